import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';

const SUPERVISOR = join(process.cwd(), 'local', 'emulator-supervisor.mjs');

/** Runs the supervisor over a stand-in emulator (a Node script) the way the stack does. */
function supervise(emulatorScript: string, graceMs = 3000) {
  const child = spawn(
    process.execPath,
    [SUPERVISOR, String(graceMs), process.execPath, '-e', emulatorScript],
    {
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  const pid = new Promise<number>((resolve) =>
    child.stdout.on('data', (chunk: Buffer) => resolve(Number(chunk.toString().split('\n')[0]))),
  );
  // The stand-in says "ready" on stderr once its SIGTERM handler is in place.
  const ready = new Promise<void>((resolve) =>
    child.stderr.on('data', (chunk: Buffer) => chunk.toString().includes('ready') && resolve()),
  );
  const exited = new Promise<{ code: number | null; at: number }>((resolve) =>
    child.on('exit', (code) => resolve({ code, at: Date.now() })),
  );
  return { child, pid, ready, exited };
}

const running = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('the emulator supervisor', () => {
  it('stops its emulator when the stack is gone, and lets it finish saving though nobody reads its stderr', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'supervisor-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const saved = join(dir, 'saved');
    // Like kinesis-local: logs while it saves its state on SIGTERM.
    const { child, pid, ready, exited } = supervise(
      `process.on('SIGTERM', () => { process.stderr.write('saving the stream\\n');
         setTimeout(() => { require('node:fs').writeFileSync(${JSON.stringify(saved)}, 'whole'); process.exit(0); }, 300); });
       process.stderr.write('ready\\n'); setInterval(() => undefined, 1000);`,
    );
    const emulator = await pid;
    await ready;
    expect(running(emulator)).toBe(true);
    // What the kernel does when the stack dies, even by SIGKILL: its ends of the pipes close.
    child.stderr.destroy();
    child.stdin.end();
    expect((await exited).code).toBe(0);
    expect(existsSync(saved) && readFileSync(saved, 'utf8')).toBe('whole');
    expect(running(emulator)).toBe(false);
  });

  it('kills an emulator that outlasts the grace period after SIGTERM', async () => {
    const { child, pid, ready, exited } = supervise(
      `process.on('SIGTERM', () => undefined); process.stderr.write('ready\\n'); setInterval(() => undefined, 1000);`,
      500,
    );
    const emulator = await pid;
    await ready;
    const closedAt = Date.now();
    child.stdin.end();
    const exit = await exited;
    expect(exit.code).toBe(128 + 9);
    expect(exit.at - closedAt).toBeGreaterThanOrEqual(450);
    expect(exit.at - closedAt).toBeLessThan(3000);
    expect(running(emulator)).toBe(false);
  });

  it("exits with its emulator's exit code when the emulator dies by itself", async () => {
    const { exited } = supervise(`setTimeout(() => process.exit(3), 100);`);
    expect((await exited).code).toBe(3);
  });
});
