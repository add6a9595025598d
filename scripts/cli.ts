/** Small helpers shared by the command-line tools. */

export class UsageError extends Error {
  override readonly name = 'UsageError';
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

/** Runs a CLI main function: usage errors print a message and exit 2, anything else exits 1. */
export function runCli(main: () => Promise<void>): void {
  main().catch((error: unknown) => {
    if (error instanceof UsageError) {
      process.stderr.write(`error: ${error.message}\n`);
      process.exit(2);
    }
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
}
