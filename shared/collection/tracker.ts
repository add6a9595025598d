import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { buildSync, type BuildOptions } from 'esbuild';

/** Builds the tracker (tracker/pv.ts) into one minified classic script with the project's esbuild. */

const SOURCE = join(dirname(fileURLToPath(import.meta.url)), 'tracker', 'pv.ts');

const OPTIONS: BuildOptions = {
  entryPoints: [SOURCE],
  bundle: true,
  format: 'iife',
  minify: true,
  // Every browser that has sendBeacon and fetch keepalive; no polyfills, no modules.
  target: ['es2020'],
  write: false,
  legalComments: 'none',
  logLevel: 'warning',
};

export interface TrackerBuild {
  readonly script: string;
  readonly bytes: number;
  readonly gzipBytes: number;
}

/** Synchronous so that the CDK app can inline it at synth time. */
export function buildTracker(): TrackerBuild {
  const [output] = buildSync(OPTIONS).outputFiles!;
  const script = output!.text;
  return {
    script,
    bytes: Buffer.byteLength(script),
    gzipBytes: gzipSync(script, { level: 9 }).byteLength,
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { script, bytes, gzipBytes } = buildTracker();
  process.stdout.write(`${script}\n`);
  process.stderr.write(`pv.js: ${bytes} bytes minified, ${gzipBytes} bytes gzipped\n`);
}
