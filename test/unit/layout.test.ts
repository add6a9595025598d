import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { areaOf, folderCycles, forbiddenImports } from '../../tools/layout.js';

describe('the layout rule', () => {
  it('puts each function folder in an area of its own and a file in its deepest area', () => {
    expect(areaOf('lambdas/speed/handler.ts')).toBe('lambdas/speed');
    expect(areaOf('shared/speed/aggregate.ts')).toBe('shared');
    expect(areaOf('bench/support/stats.ts')).toBe('bench');
    expect(areaOf('README.ts')).toBeUndefined();
  });

  it('refuses an import upward or sideways, and allows one down the layout', () => {
    const problems = forbiddenImports({
      'bench/speed.ts': ['scripts/cli.ts', 'bench/support/stats.ts', 'shared/time.ts'],
      'local/start.ts': ['scripts/traffic.ts', 'lambdas/speed/handler.ts'],
      'lambdas/origin-secret/handler.ts': ['lambdas/collect/edge.ts'],
      'shared/counts.ts': ['bench/speed.ts'],
      'scripts/cost.ts': ['bench/support/speed-design.ts', 'bench/speed.ts'],
      'scripts/smoke.ts': ['scripts/signed-fetch.ts', 'tools/signed-fetch.ts'],
      'test/unit/x.test.ts': ['scripts/cost.ts'],
    });
    expect(problems).toEqual([
      'bench/speed.ts imports scripts/cli.ts: bench/ may not import scripts/',
      'lambdas/origin-secret/handler.ts imports lambdas/collect/edge.ts: lambdas/origin-secret/ may not import lambdas/collect/',
      'local/start.ts imports scripts/traffic.ts: local/ may not import scripts/',
      'scripts/cost.ts imports bench/speed.ts: scripts/ may not import bench/',
      'scripts/smoke.ts imports scripts/signed-fetch.ts: scripts/ holds entry points only (a library goes in tools/)',
      'shared/counts.ts imports bench/speed.ts: shared/ may not import bench/',
    ]);
  });

  it('finds folders that import each other, round a loop too, with the imports that close it', () => {
    const cycles = folderCycles({
      'shared/counts.ts': ['shared/views/top.ts', 'shared/event.ts'],
      'shared/views/store.ts': ['shared/keys.ts'],
      'shared/views/top.ts': [],
      'shared/batch/run.ts': ['shared/sql/index.ts'],
      'shared/sql/index.ts': ['shared/sketch/index.ts'],
      'shared/sketch/index.ts': ['shared/batch/lag.ts'],
    });
    expect(cycles).toEqual([
      [
        'shared/',
        'shared/views/',
        '  shared/counts.ts -> shared/views/top.ts',
        '  shared/views/store.ts -> shared/keys.ts',
      ],
      [
        'shared/batch/',
        'shared/sketch/',
        'shared/sql/',
        '  shared/batch/run.ts -> shared/sql/index.ts',
        '  shared/sketch/index.ts -> shared/batch/lag.ts',
        '  shared/sql/index.ts -> shared/sketch/index.ts',
      ],
    ]);
    expect(folderCycles({ 'shared/views/top.ts': ['shared/counts.ts'], 'shared/counts.ts': [] })).toEqual([]);
  });
});

describe('npm run lint’s import check', { timeout: 120_000 }, () => {
  const root = mkdtempSync(join(tmpdir(), 'layout-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const write = (path: string, text: string) => {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  };
  const check = () =>
    spawnSync(process.execPath, ['--import', 'tsx', 'scripts/check-layout.ts', '--root', root], {
      encoding: 'utf8',
    });

  it('passes a tree without circles, and fails on a circle of files that import each other by .js names', () => {
    write(
      'tsconfig.json',
      JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext' } }),
    );
    write('shared/event.ts', "import { fits } from './utf8.js';\nexport const ok = fits('a');\n");
    write('shared/utf8.ts', 'export const fits = (s: string) => s.length < 3;\n');
    spawnSync('git', ['init', '-q'], { cwd: root });
    const clean = check();
    expect(clean.status, clean.stderr).toBe(0);

    // The circle of issue 25: event.ts -> keys.ts -> counts.ts -> event.ts, through type imports.
    write(
      'shared/event.ts',
      "import { fits } from './keys.js';\nexport type Dimension = 'url';\nexport const ok = fits('a');\n",
    );
    write(
      'shared/keys.ts',
      "import type { CountDimension } from './counts.js';\nexport const fits = (s: string | CountDimension) => s.length < 3;\n",
    );
    write(
      'shared/counts.ts',
      "import type { Dimension } from './event.js';\nexport type CountDimension = Dimension | 'total';\n",
    );
    const circle = check();
    expect(circle.status).toBe(1);
    const line = circle.stderr.split('\n').find((l) => l.startsWith('import circle: '));
    expect(new Set(line?.slice('import circle: '.length).split(' -> '))).toEqual(
      new Set(['shared/event.ts', 'shared/keys.ts', 'shared/counts.ts']),
    );
  });

  it('fails when a bench imports a script, or a folder imports one that imports it back', () => {
    write('shared/event.ts', "export type Dimension = 'url';\n");
    write('scripts/cli.ts', 'export const runCli = () => undefined;\n');
    write('bench/speed.ts', "import { runCli } from '../scripts/cli.js';\nrunCli();\n");
    write(
      'shared/views/top.ts',
      "import type { CountDimension } from '../counts.js';\nexport type Block = CountDimension;\n",
    );
    write(
      'shared/counts.ts',
      "import type { Dimension } from './event.js';\nimport type { Block } from './views/top.js';\nexport type CountDimension = Dimension | 'total';\nexport type B = Block;\n",
    );
    const result = check();
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('bench/speed.ts imports scripts/cli.ts: bench/ may not import scripts/');
    expect(result.stderr).toContain('folders import each other: shared/\nshared/views/');
  });
});
