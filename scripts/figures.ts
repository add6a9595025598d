import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { COST_CASES, refreshDocs } from '../bench/support/doc-figures.js';
import { runCli } from '../tools/cli.js';

/**
 * `npm run figures [-- --no-cost]`: runs the cost cases the docs show (`npm run cost -- … --out
 * bench/results/cost/<case>`, from the latest bench results), then rewrites every marked figure in README.md and
 * docs/*.md from bench/results/ (bench/support/doc-figures.ts). `npm run bench` rewrites the figures after its own run.
 */
async function main(): Promise<void> {
  const { values } = parseArgs({ options: { 'no-cost': { type: 'boolean', default: false } }, strict: true });
  if (!values['no-cost']) {
    for (const { name, args } of COST_CASES) {
      const out = join('bench', 'results', 'cost', name);
      const run = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/cost.ts', ...args, '--out', out], {
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      if (run.status !== 0) throw new Error(`npm run cost -- ${args.join(' ')} failed (exit ${run.status})`);
    }
  }
  const changed = refreshDocs();
  process.stderr.write(
    changed.length ? `figures rewritten in ${changed.join(', ')}\n` : 'every figure is current\n',
  );
}

runCli(main);
