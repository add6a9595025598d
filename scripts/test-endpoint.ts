import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants, createWriteStream, readlinkSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { constants as osConstants, tmpdir } from 'node:os';
import { basename, delimiter, dirname, join } from 'node:path';
import {
  EmulatorError,
  exited,
  killGroup,
  stopSupervised,
  superviseCommand,
  type Supervised,
} from '../local/emulators.js';
import { freePort } from '../local/ports.js';
import { runCli } from '../tools/cli.js';
import { readCounts } from '../tools/test-counts.js';

/**
 * `npm run test:endpoint`: the integration project with every AWS call on one endpoint, as on LocalStack.
 * With AWS_ENDPOINT_URL set, that endpoint; without it, a moto_server started here on a free port and stopped
 * after the run, on Ctrl-C and on SIGTERM too. Arguments go to vitest (e.g. one test file).
 * Why and what it found: docs/single-endpoint.md.
 */

const MOTO_INSTALL = 'pip install "moto[server]"';

/** The integration files left out of this run, and why (docs/single-endpoint.md, "What runs"). */
const LEFT_OUT: readonly { readonly glob: string; readonly why: string }[] = [
  {
    glob: 'test/integration/bench.test.ts',
    why: 'the quick benchmark times the embedded emulators (its figures name DynamoDB Local); on another endpoint it would time that server',
  },
  {
    glob: 'test/integration/local-start.test.ts',
    why: '`npm start` with the emulators it starts itself (it drops AWS_ENDPOINT_URL on purpose): the same run as in npm test',
  },
  {
    glob: 'test/integration/test-endpoint.test.ts',
    why: 'tests this command itself, with runs of its own',
  },
];

const DEFAULT_REPORT = '.vitest-endpoint-report.json';
/** moto_server answers its first request ~1 s after start here; allow for a loaded machine. */
const READY_TIMEOUT_MS = 30_000;
/** After a Ctrl-C, vitest gets this long to end its workers before its process group is killed. */
const VITEST_STOP_GRACE_MS = 5000;
const SERVER_STOP_GRACE_MS = 3000;
const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

const USAGE = `Usage: npm run test:endpoint [-- [--no-count-line] [vitest arguments, e.g. a test file]]

Runs the integration project with every AWS call on one endpoint: AWS_ENDPOINT_URL if set (LocalStack:
http://localhost:4566), otherwise a moto_server started on a free port (${MOTO_INSTALL}).
Left out: ${LEFT_OUT.map((l) => l.glob).join(', ')} (docs/single-endpoint.md says why).
The last line is "N passed, N failed"; --no-count-line leaves it out (.ci/run prints one line for both runs).`;

class MotoMissingError extends Error {
  override readonly name = 'MotoMissingError';
  readonly exitCode = 2;
}

/** The first executable named `name` on PATH. */
function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** moto's version, from the Python that runs it (Linux /proc); empty when that cannot be found. */
function motoVersion(pid: number): string {
  try {
    const python = readlinkSync(`/proc/${pid}/exe`);
    if (!basename(python).startsWith('python')) return '';
    const script = 'from importlib.metadata import version; print(version("moto"))';
    const probe = spawnSync(python, ['-c', script], { encoding: 'utf8' });
    return probe.status === 0 ? probe.stdout.trim() : '';
  } catch {
    return '';
  }
}

interface StartedServer {
  readonly supervised: Supervised;
  readonly endpoint: string;
  readonly pid: number;
  readonly label: string;
  readonly log: string;
  requests(): number;
}

async function awaitHttp(endpoint: string, server: Supervised): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (exited(server.child)) {
      throw new EmulatorError(`moto_server exited during start-up: ${server.stderrTail}`);
    }
    try {
      // Any answer means it serves; moto routes by the request's service, not by the path.
      await fetch(endpoint, { signal: AbortSignal.timeout(2000) });
      return;
    } catch {
      if (Date.now() > deadline)
        throw new EmulatorError(
          `moto_server did not answer on ${endpoint} within ${READY_TIMEOUT_MS / 1000} s`,
        );
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

/** Starts moto_server on a free loopback port under a supervisor, which stops it even if this process is killed. */
async function startMoto(): Promise<StartedServer> {
  const command = onPath('moto_server');
  if (!command) {
    throw new MotoMissingError(
      `moto_server is not on PATH. Install it with \`${MOTO_INSTALL}\`, or set AWS_ENDPOINT_URL to an ` +
        'endpoint that serves Kinesis, DynamoDB and S3 (LocalStack: http://localhost:4566).',
    );
  }
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const supervised = superviseCommand(
    'moto_server',
    { command, args: ['-H', '127.0.0.1', '-p', String(port)], env: process.env },
    tmpdir(),
  );
  // moto logs one line per request to stderr: kept in a file for a failed run, and counted.
  const log = join(tmpdir(), `moto_server-${port}.log`);
  const file = createWriteStream(log);
  let requests = 0;
  supervised.child.stderr!.on('data', (chunk: Buffer) => {
    file.write(chunk);
    requests += chunk.toString().match(/"(?:GET|HEAD|POST|PUT|DELETE|PATCH|OPTIONS) /g)?.length ?? 0;
  });
  supervised.child.once('exit', () => file.end());
  let pid: number;
  try {
    pid = await supervised.pid;
    await awaitHttp(endpoint, supervised);
  } catch (error) {
    await stopSupervised(supervised, SERVER_STOP_GRACE_MS);
    throw error;
  }
  const version = motoVersion(pid);
  return {
    supervised,
    endpoint,
    pid,
    label: `moto_server${version ? ` ${version}` : ''}`,
    log,
    requests: () => requests,
  };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const countLine = !args.includes('--no-count-line');
  const vitestArgs = args.filter((arg) => arg !== '--no-count-line');
  const report = process.env.PAGEVIEWS_TEST_REPORT || DEFAULT_REPORT;
  rmSync(report, { force: true });

  // What a stop must end; filled in as the run starts them.
  const run: { server?: Promise<StartedServer>; vitest?: ChildProcess; interrupted?: NodeJS.Signals } = {};
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      const { vitest } = run;
      if (vitest) {
        if (!exited(vitest)) {
          const gone = new Promise((resolve) => vitest.once('exit', resolve));
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([
            gone,
            new Promise((resolve) => (timer = setTimeout(resolve, VITEST_STOP_GRACE_MS))),
          ]);
          clearTimeout(timer);
        }
        // Its workers can outlive it for a moment: the group goes whole, whether vitest is still there or not.
        try {
          process.kill(-vitest.pid!, 'SIGKILL');
        } catch {
          // nothing left in it
        }
      }
      const server = await run.server?.catch(() => undefined);
      if (server) await stopSupervised(server.supervised, SERVER_STOP_GRACE_MS);
    })());
  // A terminal's Ctrl-C reaches this process and npm forwards it once more: the first one stops the run.
  for (const signal of STOP_SIGNALS) {
    process.on(signal, () => {
      if (run.interrupted) return;
      run.interrupted = signal;
      process.stderr.write(`\n${signal}: stopping the tests${run.server ? ' and moto_server' : ''}…\n`);
      if (run.vitest) killGroup(run.vitest, signal);
      void stop().then(() => process.exit(128 + osConstants.signals[signal]));
    });
  }

  const external = process.env.AWS_ENDPOINT_URL;
  if (!external) run.server = startMoto();
  const started = await run.server;
  if (run.interrupted) return;
  const endpoint = external ?? started!.endpoint;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    AWS_ENDPOINT_URL: endpoint,
    PAGEVIEWS_TEST_REPORT: report,
    // moto writes far slower than DynamoDB Local (docs/single-endpoint.md, "Write throughput"): setup hooks get
    // ten minutes instead of two.
    PAGEVIEWS_HOOK_TIMEOUT_MS: '600000',
    // This run's call ledger goes apart: it must not replace the one `npm test` wrote (and its ledger project
    // checks), also when this command runs inside npm test (test/integration/test-endpoint.test.ts).
    PAGEVIEWS_LEDGER_DIR: join(tmpdir(), `pageviews-endpoint-ledger-${process.pid}`),
  };
  if (!external) {
    // Every call goes to moto: per-service overrides would send some elsewhere.
    for (const name of Object.keys(env)) if (name.startsWith('AWS_ENDPOINT_URL_')) delete env[name];
  }
  // Emulators take any key pair; a set one keeps the SDK from looking for credentials elsewhere.
  env.AWS_ACCESS_KEY_ID ??= 'test';
  env.AWS_SECRET_ACCESS_KEY ??= 'test';
  env.AWS_REGION ??= 'us-east-1';

  const where = started ? `${started.label} on ${endpoint} (pid ${started.pid})` : endpoint;
  process.stdout.write(
    `single endpoint: ${where}\n` +
      LEFT_OUT.map((l) => `  left out: ${l.glob}: ${l.why}\n`).join('') +
      `running the integration project against ${endpoint}\n`,
  );
  const vitestBin = join(
    dirname(createRequire(import.meta.url).resolve('vitest/package.json')),
    'vitest.mjs',
  );
  const runStarted = Date.now();
  // A process group of its own, so that a stop can end its workers too.
  const vitest = (run.vitest = spawn(
    process.execPath,
    [
      vitestBin,
      'run',
      '--project',
      'integration',
      ...LEFT_OUT.flatMap((l) => ['--exclude', l.glob]),
      ...vitestArgs,
    ],
    { env, stdio: ['ignore', 'inherit', 'inherit'], detached: true },
  ));
  const code = await new Promise<number>((resolve) =>
    vitest.once('exit', (exitCode, signal) => resolve(exitCode ?? 128 + osConstants.signals[signal!])),
  );
  if (run.interrupted) return;
  await stop();

  const counts = readCounts(report);
  const minutes = ((Date.now() - runStarted) / 60_000).toFixed(1);
  process.stdout.write(
    `single endpoint: ${where}` +
      (started ? `, ${started.requests().toLocaleString('en-US')} requests` : '') +
      (started && code !== 0 ? ` (its log: ${started.log})` : '') +
      `, ${minutes} min\n`,
  );
  if (countLine) process.stdout.write(`${counts?.passed ?? 0} passed, ${counts?.failed ?? 0} failed\n`);
  if (started && code === 0) rmSync(started.log, { force: true });
  rmSync(env.PAGEVIEWS_LEDGER_DIR!, { recursive: true, force: true });
  process.exitCode = code !== 0 ? code : !counts || counts.passed === 0 ? 1 : 0;
}

runCli(main);
