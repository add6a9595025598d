import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  COST_CASES,
  documents,
  FigureMarkerError,
  FIGURES,
  markersIn,
  renderDocument,
  resultsIn,
  type CostReport,
  type Results,
} from '../../bench/support/doc-figures.js';
import { toMarkdown } from '../../bench/run.js';
import type { BenchReport } from '../../bench/support/types.js';

/**
 * Figures in Markdown are generated, never copied by hand: every marked figure in README.md and docs/*.md is what
 * bench/support/doc-figures.ts renders from the committed bench/results/ now, every results table agrees with its JSON,
 * and the sections that report measurements carry no figure outside a marker.
 */

const RESULTS = 'bench/results';
const results = resultsIn(RESULTS);

/** Sections that report measurements: every figure in them must be generated. [file, first line, end or EOF] */
const MEASURED_SECTIONS: ReadonlyArray<readonly [string, string, string | undefined]> = [
  ['docs/performance.md', '# Performance', undefined],
  ['docs/speed-layer.md', '## Figures', undefined],
  ['docs/collector.md', '## Cost', "CloudFront's $1.00 per million"],
];

/**
 * What a hand-copied figure looks like: a decimal, a dollar amount, a percentage, a ratio or a number with a unit
 * of measurement. Targets ("target 2 s") are requirements, not measurements.
 */
const FIGURE = /\$\d|\d\.\d|\d\s?(%|×|ms\b|s\b|µs\b|KB\b|MB\b|B\b|bytes\b|WCU\b|writes\b|minutes\b)/;

/** The text a reader sees as prose: generated figures, code, link targets and targets removed. */
function handWritten(text: string): string {
  return text
    .replace(/<!-- bench:[\w.-]+ -->[\s\S]*?<!-- \/bench -->/g, '')
    .replace(/```[\s\S]*?```/g, '')
    .replace(/`[^`]*`/g, '')
    .replace(/\]\([^)]*\)/g, ']')
    .replace(/target [^);]*/g, '');
}

function section(file: string, start: string, end: string | undefined): string {
  const text = readFileSync(file, 'utf8');
  const from = text.indexOf(start);
  expect(from, `${file} has "${start}"`).toBeGreaterThanOrEqual(0);
  const to = end === undefined ? text.length : text.indexOf(end, from);
  expect(to, `${file} has "${end}" after "${start}"`).toBeGreaterThan(from);
  return text.slice(from, to);
}

describe('figures in the docs', () => {
  it('are, in every Markdown file, what their results files give now (npm run figures rewrites them)', () => {
    let markers = 0;
    for (const file of documents()) {
      const text = readFileSync(file, 'utf8');
      markers += markersIn(text).length;
      expect(renderDocument(text, results), `${file}: run npm run figures`).toBe(text);
    }
    // The chapters do carry generated figures: the check above is not vacuous.
    expect(markers).toBeGreaterThan(30);
  });

  it('appear nowhere by hand in the sections that report measurements', () => {
    for (const [file, start, end] of MEASURED_SECTIONS) {
      const prose = handWritten(section(file, start, end));
      const lines = prose.split('\n').filter((line) => FIGURE.test(line));
      expect(lines, `${file} "${start}": hand-written figures`).toEqual([]);
      expect(markersIn(section(file, start, end)).length, `${file} "${start}"`).toBeGreaterThan(0);
    }
  });

  it('use every figure the generator knows of, so none is left to go stale', () => {
    const used = new Set(documents().flatMap((file) => markersIn(readFileSync(file, 'utf8'))));
    expect(Object.keys(FIGURES).filter((id) => !used.has(id))).toEqual([]);
  });
});

describe('the results files', () => {
  it('hold each bench table as the runner writes it from the JSON beside it', () => {
    const pairs: string[] = [];
    const walk = (dir: string): void => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) {
          if (entry.name !== 'cost') walk(path);
        } else if (entry.name.endsWith('.json')) pairs.push(path.slice(0, -'.json'.length));
      }
    };
    walk(RESULTS);
    expect(pairs.length).toBeGreaterThanOrEqual(6);
    for (const base of pairs) {
      const report = JSON.parse(readFileSync(`${base}.json`, 'utf8')) as BenchReport;
      expect(readFileSync(`${base}.md`, 'utf8'), `${base}.md`).toBe(toMarkdown(report));
    }
  });

  it('hold every cost case the docs show, each Markdown file with the totals of its JSON', () => {
    const usd = (n: number) =>
      `$${n.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
    for (const { name, args } of COST_CASES) {
      const base = join(RESULTS, 'cost', name);
      expect(existsSync(`${base}.json`), `${base}.json: run npm run figures`).toBe(true);
      const report = JSON.parse(readFileSync(`${base}.json`, 'utf8')) as CostReport;
      expect(report.command).toBe(`npm run cost -- ${args.join(' ')}`);
      const text = readFileSync(`${base}.md`, 'utf8');
      expect(text).toContain(report.command);
      expect(text).toContain(usd(report.ours.total));
      expect(text).toContain(usd(report.naive.total));
      expect(text).toContain(usd(report.collection.perMillionEvents));
    }
  });
});

describe('renderDocument', () => {
  const fake: Results = {
    bench: () => ({
      startedAt: '2026-12-01T00:00:00.000Z',
      quick: true,
      machine: { cpus: 2, cpuModel: 'test' },
      durationSeconds: 1,
      figures: [],
    }),
    cost: () => {
      throw new Error('no cost case in this test');
    },
  };
  const figures = { one: () => '42 ms', table: () => '| a |\n| --- |\n| 1 |' };

  it('rewrites a stale inline figure and leaves the text around it as it was', () => {
    expect(renderDocument('takes <!-- bench:one -->41 ms<!-- /bench --> cold.\n', fake, figures)).toBe(
      'takes <!-- bench:one -->42 ms<!-- /bench --> cold.\n',
    );
  });

  it('puts a table on lines of its own between the markers, and is stable on its own output', () => {
    const once = renderDocument('x\n\n<!-- bench:table --><!-- /bench -->\n', fake, figures);
    expect(once).toBe('x\n\n<!-- bench:table -->\n\n| a |\n| --- |\n| 1 |\n\n<!-- /bench -->\n');
    expect(renderDocument(once, fake, figures)).toBe(once);
  });

  it('refuses an unknown figure and an unclosed marker', () => {
    expect(() => renderDocument('<!-- bench:two -->1<!-- /bench -->', fake, figures)).toThrow(
      FigureMarkerError,
    );
    expect(() => renderDocument('<!-- bench:one -->1', fake, figures)).toThrow(FigureMarkerError);
  });

  it('fails, rather than writing an empty cell, when a results file lacks a figure', () => {
    expect(() => renderDocument('<!-- bench:speed-100k-writes --><!-- /bench -->', fake)).toThrow(
      /has no figure/,
    );
  });
});
