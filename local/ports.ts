import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * Ports of the local stack: a taken port is refused before anything starts, with the process that holds it
 * when it can be found, because a server the stack did not start must never be mistaken for its own.
 */

export interface PortHolder {
  readonly pid: number;
  readonly command: string;
}

const shorten = (command: string) => (command.length > 160 ? `${command.slice(0, 160)}…` : command);

export class PortTakenError extends Error {
  override readonly name = 'PortTakenError';
  /** The message says what to change: the CLI exits 2, as for a usage error. */
  readonly exitCode = 2;
  constructor(
    /** What wanted the port, e.g. `dynamodb` or `api` (the CLI flag is `--<what>-port`). */
    readonly what: string,
    readonly port: number,
    readonly holder: PortHolder | undefined,
  ) {
    super(
      `port ${port} (${what}) is already in use` +
        (holder ? ` by pid ${holder.pid}: ${shorten(holder.command)}` : ' by another process'),
    );
  }
}

/** Commands of the emulators this project starts, to recognise one left behind by an earlier stack. */
const EMULATOR_COMMAND = /DynamoDBLocal\.jar|s3rver|kinesis-local/;

export function looksLikeLeftoverEmulator(holder: PortHolder | undefined): boolean {
  return holder !== undefined && EMULATOR_COMMAND.test(holder.command);
}

/** A port that was free a moment ago (the OS picks it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** True if nothing listens on the port on any address (the probe binds the dual-stack wildcard). */
export async function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', (error: NodeJS.ErrnoException) =>
      error.code === 'EADDRINUSE' || error.code === 'EACCES' ? resolve(false) : reject(error),
    );
    server.listen({ port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

export async function assertPortFree(what: string, port: number): Promise<void> {
  if (!(await isPortFree(port))) throw new PortTakenError(what, port, findListener(port));
}

/** Socket inodes listening on the port, from /proc/net/tcp and tcp6 (state 0A = LISTEN). */
function listeningInodes(port: number): Set<string> {
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      const localPort = fields[1]?.split(':')[1];
      if (localPort && parseInt(localPort, 16) === port && fields[3] === '0A' && fields[9]) {
        inodes.add(fields[9]);
      }
    }
  }
  return inodes;
}

/**
 * The process listening on a TCP port, found through /proc (Linux); undefined elsewhere or when the
 * process belongs to a user whose file descriptors we may not read. Best effort, for messages and checks.
 */
export function findListener(port: number): PortHolder | undefined {
  const inodes = listeningInodes(port);
  if (inodes.size === 0) return undefined;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${entry}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${entry}/fd/${fd}`);
      } catch {
        continue;
      }
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      if (inode && inodes.has(inode)) return { pid: Number(entry), command: commandLine(Number(entry)) };
    }
  }
  return undefined;
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
  } catch {
    return '(command unknown)';
  }
}
