import { execFileSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import madge from 'madge';
import { runCli } from '../tools/cli.js';
import { folderCycles, forbiddenImports, type ImportGraph } from '../tools/layout.js';

/**
 * `npm run lint`'s import check (docs/layout.md): no import circle between files (madge's circular check), none
 * between folders, and no import the layout (tools/layout.ts) does not allow. Exits 1 with what it found.
 * `--root DIR` checks another tree (the tests give it one with a circle).
 */

/** The TypeScript and ESM files git tracks under `root`, generated ones left out. */
function sourceFiles(root: string): string[] {
  return execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '*.ts', '*.mjs'], {
    cwd: root,
    encoding: 'utf8',
  })
    .split('\n')
    .filter((file) => file && !file.startsWith('bench/results/') && !file.endsWith('.d.ts'));
}

/** Every file's imports, as paths from `root`, through madge (which resolves `.js` specifiers to `.ts` files). */
async function importGraph(root: string): Promise<{ graph: ImportGraph; circles: string[][] }> {
  const result = await madge(
    sourceFiles(root).map((file) => join(root, file)),
    {
      baseDir: root,
      fileExtensions: ['ts', 'mjs'],
      tsConfig: `${root}/tsconfig.json`,
    } as Parameters<typeof madge>[1],
  );
  return { graph: result.obj(), circles: result.circular() };
}

async function main(): Promise<void> {
  const at = process.argv.indexOf('--root');
  const root = resolve(at > 0 ? process.argv[at + 1]! : '.');
  const { graph, circles } = await importGraph(root);
  const problems = [
    ...circles.map((circle) => `import circle: ${[...circle, circle[0]].join(' -> ')}`),
    ...folderCycles(graph).map((cycle) => `folders import each other: ${cycle.join('\n')}`),
    ...forbiddenImports(graph).map((line) => `import against the layout: ${line}`),
  ];
  if (problems.length > 0) {
    process.stderr.write(`${problems.join('\n')}\n`);
    process.exit(1);
  }
  process.stdout.write(
    `layout: ${Object.keys(graph).length} files, no circles, every import as the layout allows\n`,
  );
}

runCli(main);
