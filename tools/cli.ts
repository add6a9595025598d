/** Small helpers shared by the command-line tools. */

export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly exitCode = 2;
}

/**
 * An error whose message tells the user what is wrong and what to do (a usage error, a taken port, no local
 * stack): printed without a stack trace, and the process exits with its code.
 */
function explainedExitCode(error: unknown): number | undefined {
  if (!(error instanceof Error)) return undefined;
  // node:util parseArgs: an unknown option, a missing value, a stray argument. A usage error like ours.
  const nodeCode = (error as { code?: unknown }).code;
  if (typeof nodeCode === 'string' && nodeCode.startsWith('ERR_PARSE_ARGS_')) return 2;
  const code = (error as { exitCode?: unknown }).exitCode;
  return typeof code === 'number' ? code : undefined;
}

/** Parses an instant given as ISO-8601 or epoch milliseconds. */
export function parseInstant(value: string, option: string): number {
  const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(ms))
    throw new UsageError(`${option}: "${value}" is neither ISO-8601 nor epoch milliseconds`);
  return ms;
}

export function parseNumber(
  value: string | undefined,
  option: string,
  { min = -Infinity, max = Infinity } = {},
): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new UsageError(`${option}: "${value}" must be a number between ${min} and ${max}`);
  }
  return n;
}

/**
 * Runs a CLI main function: errors that carry an exit code (usage errors exit 2) print their message,
 * anything else prints its stack and exits 1.
 */
export function runCli(main: () => Promise<void>): void {
  main().catch((error: unknown) => {
    const exitCode = explainedExitCode(error);
    if (exitCode !== undefined) {
      process.stderr.write(`error: ${(error as Error).message}\n`);
      process.exit(exitCode);
    }
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
}
