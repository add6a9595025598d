import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StackFile } from '../../../local/stack-file.js';

/**
 * The real `npm start` / `npm run …` as a user runs them: a child in a process group of its own (so a test can
 * send a signal to the whole group, as a terminal's Ctrl-C does) with a state folder of its own.
 */

export interface NpmProcess {
  readonly child: ChildProcess;
  /** The state folder (PAGEVIEWS_LOCAL_DIR): every process of this run carries it in its environment. */
  readonly dir: string;
  /** stdout and stderr so far. */
  output(): string;
  /** Resolves with the exit and the time it happened. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  /** SIGKILL to the group and to every process of the run, for cleanup after a failed assertion. */
  kill(): void;
}

/** The environment without endpoint overrides: these tests are about the emulators the stack starts. */
function embeddedEnvironment(dir: string, extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra, PAGEVIEWS_LOCAL_DIR: dir };
  for (const name of Object.keys(env)) if (name.startsWith('AWS_ENDPOINT_URL')) delete env[name];
  return env;
}

export function newStateDir(): string {
  return mkdtempSync(join(tmpdir(), 'pageviews-start-'));
}

/** `extra` adds to the environment (e.g. another PATH). */
export function npm(args: readonly string[], dir = newStateDir(), extra: NodeJS.ProcessEnv = {}): NpmProcess {
  const child = spawn('npm', args, {
    env: embeddedEnvironment(dir, extra),
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, at: Date.now() })),
  );
  return {
    child,
    dir,
    output: () => output,
    exited,
    kill: () => {
      for (const pid of [-child.pid!, ...processesOf(dir)]) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
    },
  };
}

/** Free ports everywhere: never the defaults, which other stacks on this machine may hold. */
export const ANY_PORTS = [
  '--api-port',
  '0',
  '--site-port',
  '0',
  '--collector-port',
  '0',
  '--kinesis-port',
  '0',
  '--dynamodb-port',
  '0',
  '--s3-port',
  '0',
];

export function npmStart(args: readonly string[], dir?: string): NpmProcess {
  return npm(['start', '--', ...args], dir);
}

/**
 * Polls `probe` until it gives a value. The bound is a liveness limit, not a speed claim: a stack that starts on a
 * 2-core machine shared with other test processes may take minutes to write its stack file.
 */
export async function until<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 180_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export function stackFile(dir: string): StackFile | undefined {
  const path = join(dir, 'stack.json');
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as StackFile) : undefined;
}

/**
 * Every live process of a run, found by the state folder in its environment (Linux /proc): npm, the stack,
 * the supervisors, the emulators and anything they started.
 */
export function processesOf(dir: string): number[] {
  const marker = `PAGEVIEWS_LOCAL_DIR=${dir}`;
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(marker);
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** A running process: one that exists and is not a zombie waiting for its parent to reap it. */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
