import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startLocalStack, type LocalStack } from '../../local/stack.js';
import { writeStackFile } from '../../local/stack-file.js';
import { isolatedNames } from './support/stack.js';

/**
 * `npm run smoke`, the check a deployment ends with, run the way a user runs it, against a local stack that
 * has written its stack file. (Against AWS it reads the stack's outputs instead; everything after is the same.)
 */

function smoke(localDir: string, args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    // Asynchronously: the stack under test runs in this process and must keep serving while the command waits.
    const child = spawn('npm', ['run', '--silent', 'smoke', '--', ...args], {
      env: { ...process.env, PAGEVIEWS_LOCAL_DIR: localDir, CI: 'true' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('close', (code) => resolve({ code, out }));
  });
}

describe('npm run smoke', () => {
  let stack: LocalStack;
  let localDir: string;
  beforeAll(async () => {
    stack = await startLocalStack({
      emulators: inject('emulators'),
      names: isolatedNames('smoke'),
      shards: 1,
      runBatchAtStart: false,
      batchIntervalMs: 3_600_000,
    });
    localDir = mkdtempSync(join(tmpdir(), 'smoke-'));
    writeStackFile(
      {
        region: stack.region,
        credentials: stack.credentials,
        endpoints: stack.endpoints,
        names: stack.config.names,
        apiUrl: stack.apiUrl,
        pid: process.pid,
        emulatorPids: [],
        startedAt: new Date().toISOString(),
      },
      join(localDir, 'stack.json'),
    );
  });
  afterAll(async () => {
    await stack?.stop({ graceMs: 4000 });
    rmSync(localDir, { recursive: true, force: true });
  });

  it('puts 100 page views on the stream and sees the speed layer count exactly those through the API', async () => {
    const { code, out } = await smoke(localDir, ['--timeout', '90']);
    expect(out).toMatch(/the API counted 100 of 100 page views after \d+\.\d s/);
    expect(out).toContain('smoke test passed');
    expect(code).toBe(0);
  });

  it('fails, saying how many are missing, when the speed layer does not count them', async () => {
    await stack.esm.stop();
    const { code, out } = await smoke(localDir, ['--count', '10', '--timeout', '4']);
    expect(out).toContain('the API counted 0 of 10 page views');
    expect(out).toContain('10 page views were not counted within 4 s');
    expect(code).toBe(1);
  });
});
