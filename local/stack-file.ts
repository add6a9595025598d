import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { ClientOptions, Service } from '../shared/aws-clients.js';
import type { ResourceNames } from '../shared/resources.js';

/** `.local/stack.json`: what a running local stack offers, so that other tools can find it. */
export interface StackFile {
  readonly region: string;
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
  readonly endpoints: Readonly<Record<Exclude<Service, 'athena'>, string>>;
  readonly names: ResourceNames;
  /** Base URL of the local HTTP API (API Gateway stand-in), once it is up. */
  readonly apiUrl?: string;
  readonly pid: number;
  /** Process ids of the embedded emulators (empty with AWS_ENDPOINT_URL). */
  readonly emulatorPids: readonly number[];
  readonly startedAt: string;
}

export const LOCAL_DIR = resolve(process.env.PAGEVIEWS_LOCAL_DIR ?? '.local');
export const STACK_FILE = resolve(LOCAL_DIR, 'stack.json');

export function writeStackFile(stack: StackFile, path = STACK_FILE): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify(stack, null, 2) + '\n');
}

export function readStackFile(path = STACK_FILE): StackFile | undefined {
  if (!existsSync(path)) return undefined;
  return JSON.parse(readFileSync(path, 'utf8')) as StackFile;
}

/** Client options that point the SDK at a running local stack. */
export function clientOptionsFor(stack: StackFile): ClientOptions {
  return { region: stack.region, credentials: stack.credentials, endpoints: stack.endpoints };
}
