import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { PageViewsResponse } from '../../shared/api-types.js';
import { HOUR_MS, hourBucket, toIso } from '../../shared/time.js';
import type { StackFile } from '../../local/stack-file.js';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function until<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

describe('npm start', () => {
  it('brings the pipeline up, counts generated traffic through the API, and leaves no process behind on SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pageviews-start-'));
    const ports = [
      '--api-port',
      '0',
      '--site-port',
      '0',
      '--kinesis-port',
      '0',
      '--dynamodb-port',
      '0',
      '--s3-port',
      '0',
    ];
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'local/start.ts', '--generate', '50', '--batch-interval', '5', ...ports],
      {
        env: { ...process.env, PAGEVIEWS_LOCAL_DIR: dir },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const stackFile = join(dir, 'stack.json');
      const stack = await until('the stack file', () =>
        existsSync(stackFile) ? (JSON.parse(readFileSync(stackFile, 'utf8')) as StackFile) : undefined,
      );
      expect(stack.emulatorPids.length).toBe(3);
      expect(Object.keys(stack.endpoints).sort()).toEqual(['dynamodb', 'kinesis', 's3']);
      const status = await fetch(`${stack.apiUrl}/v1/status`);
      expect(status.status).toBe(200);
      const demoSite = await until(
        'the printed demo site URL',
        () => /Demo site\s+(http:\/\/\S+?)\/\s/.exec(output)?.[1],
      );
      expect(output).toContain(`Collector      POST ${stack.apiUrl}/v1/events`);
      expect((await fetch(`${stack.apiUrl}/pv.js`)).status).toBe(200);
      const page = await (await fetch(`${demoSite}/app/reports`)).text();
      expect(page).toContain(`src="${stack.apiUrl}/pv.js"`);
      const from = hourBucket(Date.now());
      const url = `${stack.apiUrl}/v1/pageviews?from=${toIso(from)}&to=${toIso(from + HOUR_MS)}&granularity=minute`;
      const counted = await until('counted page views', async () => {
        const body = (await (await fetch(url)).json()) as PageViewsResponse;
        return body.total > 0 ? body.total : undefined;
      });
      expect(counted).toBeGreaterThan(0);
      await until('a batch run in the log', () => (output.includes('batch run: H = ') ? true : undefined));

      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(output).toContain('stopped');
      for (const pid of stack.emulatorPids) expect(alive(pid), `emulator ${pid} still alive`).toBe(false);
      expect(existsSync(stackFile)).toBe(false);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
