import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import type { ClientOptions, Service } from '../shared/aws-clients.js';
import type { ResourceNames } from '../shared/resources.js';

/** `.local/stack.json`: what a running local stack offers, so that other tools can find it. */
export interface StackFile {
  readonly region: string;
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
  readonly endpoints: Readonly<
    Record<Exclude<Service, 'athena' | 'cloudwatch' | 'secretsmanager' | 'cloudfront'>, string>
  >;
  readonly names: ResourceNames;
  /** Base URL of the local HTTP API (API Gateway stand-in), once it is up. */
  readonly apiUrl?: string;
  /** `POST` page views here: the collector's CloudFront stand-in. */
  readonly collectorUrl?: string;
  readonly pid: number;
  /** Process ids of the embedded emulators (empty with AWS_ENDPOINT_URL). */
  readonly emulatorPids: readonly number[];
  readonly startedAt: string;
}

export const LOCAL_DIR = resolve(process.env.PAGEVIEWS_LOCAL_DIR ?? '.local');
export const STACK_FILE = resolve(LOCAL_DIR, 'stack.json');

/** The stack file's path as a user would type it: relative to the working directory when inside it. */
export function displayPath(path = STACK_FILE): string {
  const shown = relative(process.cwd(), path);
  return shown.startsWith('..') ? path : shown;
}

/** Tools that need a running local stack and find none (or a stale stack file) say so and exit 2. */
export class NoLocalStackError extends Error {
  override readonly name = 'NoLocalStackError';
  readonly exitCode = 2;
}

/** Written atomically, readable by the owner only: it holds credentials (the emulators' fixed pair). */
export function writeStackFile(stack: StackFile, path = STACK_FILE): void {
  mkdirSync(dirname(path), { recursive: true });
  // Only the two strings: the SDK adds internal fields (such as `$source`) to credential objects it has used.
  const { accessKeyId, secretAccessKey } = stack.credentials;
  const text = JSON.stringify({ ...stack, credentials: { accessKeyId, secretAccessKey } }, null, 2) + '\n';
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, text, { mode: 0o600 });
  renameSync(temporary, path);
}

function readStackFile(path = STACK_FILE): StackFile | undefined {
  if (!existsSync(path)) return undefined;
  return JSON.parse(readFileSync(path, 'utf8')) as StackFile;
}

export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export type LocalStackState =
  | { readonly state: 'none' }
  | { readonly state: 'running'; readonly stack: StackFile }
  /** The file outlived its stack (killed, or the machine restarted). */
  | { readonly state: 'stale'; readonly stack: StackFile };

export function localStackState(path = STACK_FILE): LocalStackState {
  const stack = readStackFile(path);
  if (!stack) return { state: 'none' };
  return isRunning(stack.pid) ? { state: 'running', stack } : { state: 'stale', stack };
}

/** Why no local stack can be used, for a tool's error message; `remedy` says what else the tool accepts. */
export function noLocalStackMessage(state: LocalStackState, remedy: string, path = STACK_FILE): string {
  const why =
    state.state === 'stale'
      ? `${displayPath(path)} is stale: the stack that wrote it (pid ${state.stack.pid}, started ${state.stack.startedAt}) is gone`
      : `no ${displayPath(path)}`;
  return `no local stack is running (${why}): start one with \`npm start\`${remedy}`;
}

/** The running local stack, or a NoLocalStackError that says how to get one. */
export function requireLocalStack(remedy = '', path = STACK_FILE): StackFile {
  const state = localStackState(path);
  if (state.state === 'running') return state.stack;
  throw new NoLocalStackError(noLocalStackMessage(state, remedy, path));
}

/** Client options that point the SDK at a running local stack. */
export function clientOptionsFor(stack: StackFile): ClientOptions {
  return { region: stack.region, credentials: stack.credentials, endpoints: stack.endpoints };
}
