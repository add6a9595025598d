import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FUNCTIONS, type FunctionName, type LedgerEntry } from '../../../shared/call-ledger.js';
import { IAM_ACTIONS, type Call } from './iam-actions.js';
import { decide, grantCovers, grantsOf, type Grant, type Requirement } from './policy.js';
import type { StackModel } from './stack-model.js';

/** Where the integration tests write the ledger (vitest.config.ts) and the ledger project reads it. */
export const LEDGER_DIR =
  process.env.PAGEVIEWS_LEDGER_DIR ??
  join(dirname(fileURLToPath(import.meta.url)), '../../../test-artifacts/call-ledger');
/** One marker per integration test file that ran to its end, so that a partial run is told apart. */
export const LEDGER_FILES_DIR = join(LEDGER_DIR, 'files');

export function readLedger(dir = LEDGER_DIR): LedgerEntry[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((file) => file.endsWith('.jsonl'))
    .flatMap((file) =>
      readFileSync(join(dir, file), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as LedgerEntry),
    );
}

export function completedTestFiles(dir = LEDGER_FILES_DIR): string[] {
  return existsSync(dir) ? readdirSync(dir).sort() : [];
}

export interface CheckedCall {
  readonly call: Call;
  readonly requirement: Requirement;
}

export interface LedgerReport {
  /** Calls the function's role does not allow, as `fn: service:Operation needs action on resource (why)`. */
  readonly refused: string[];
  /** Calls the map in iam-actions.ts does not know, or whose resource is none of the function's. */
  readonly unmapped: string[];
  /** Grants of each role that no recorded call and no service acting for the function needed. */
  readonly unused: Record<FunctionName, string[]>;
  readonly calls: Record<FunctionName, number>;
  readonly invoked: readonly FunctionName[];
}

const MISSING_RESOURCE = new Set(['ResourceNotFoundException', 'NoSuchBucket', 'ResourceNotFound']);

const describeGrant = (grant: Grant) => `${grant.action} on ${grant.resource} (${grant.statement.source})`;

/** Evaluates every recorded call (and what services do for each function) against the function's role. */
export function checkLedger(stack: StackModel, entries: readonly LedgerEntry[]): LedgerReport {
  const refused = new Set<string>();
  const unmapped = new Set<string>();
  const required = Object.fromEntries(FUNCTIONS.map((fn) => [fn, [] as Requirement[]])) as Record<
    FunctionName,
    Requirement[]
  >;
  const calls = Object.fromEntries(FUNCTIONS.map((fn) => [fn, 0])) as Record<FunctionName, number>;
  for (const entry of entries) {
    if (entry.kind !== 'call') continue;
    const call = { ...entry, input: entry.input ?? {} } as Call;
    calls[call.fn] += 1;
    const name = `${call.service}:${call.operation}`;
    const rule = IAM_ACTIONS[name];
    if (!rule) {
      unmapped.add(`${call.fn}: ${name} is not in test/support/aws-fidelity/iam-actions.ts`);
      continue;
    }
    try {
      required[call.fn].push(...rule(call, stack.functions[call.fn].resources));
    } catch (error) {
      // A test that points a function at a resource that does not exist (to see a permanent error handled) makes
      // a call no deployed function makes: not a grant to check.
      if (call.error && MISSING_RESOURCE.has(call.error)) continue;
      unmapped.add(`${call.fn}: ${name} ${JSON.stringify(call.input)}: ${(error as Error).message}`);
    }
  }
  const unused = {} as Record<FunctionName, string[]>;
  for (const fn of FUNCTIONS) {
    const deployed = stack.functions[fn];
    const requirements = [...required[fn], ...deployed.serviceRequirements];
    const used = new Set<Grant>();
    const grants = grantsOf(deployed.statements);
    for (const requirement of requirements) {
      const decision = decide(requirement, deployed.statements);
      if (!decision.allowed) {
        refused.add(
          `${fn}: ${requirement.action} on ${requirement.resource}` +
            (requirement.why ? ` (${requirement.why})` : '') +
            (decision.deniedBy ? ` denied by ${decision.deniedBy.source}` : ' allowed by no statement'),
        );
        continue;
      }
      for (const grant of grants) {
        if (decision.allowedBy.includes(grant.statement) && grantCovers(grant, requirement)) used.add(grant);
      }
    }
    unused[fn] = grants.filter((g) => !used.has(g)).map(describeGrant);
  }
  const invoked = FUNCTIONS.filter((fn) => entries.some((e) => e.kind === 'invoke' && e.fn === fn));
  return { refused: [...refused].sort(), unmapped: [...unmapped].sort(), unused, calls, invoked };
}
