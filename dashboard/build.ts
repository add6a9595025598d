import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

/** Builds the dashboard into dashboard/dist with esbuild (one small ES module, no CDN, no network). */

const HERE = dirname(fileURLToPath(import.meta.url));
export const DASHBOARD_DIST = join(HERE, 'dist');

export async function buildDashboard(): Promise<string> {
  mkdirSync(DASHBOARD_DIST, { recursive: true });
  await build({
    entryPoints: [join(HERE, 'src', 'main.ts')],
    outfile: join(DASHBOARD_DIST, 'app.js'),
    bundle: true,
    format: 'esm',
    minify: true,
    sourcemap: true,
    target: 'es2020',
    logLevel: 'warning',
  });
  for (const file of ['index.html', 'styles.css']) copyFileSync(join(HERE, file), join(DASHBOARD_DIST, file));
  return DASHBOARD_DIST;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  buildDashboard().then(
    (dir) => process.stdout.write(`dashboard built in ${dir}\n`),
    (error: unknown) => {
      process.stderr.write(`${String(error)}\n`);
      process.exit(1);
    },
  );
}
