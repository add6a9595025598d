/**
 * Which AWS errors a retry can fix. Only throttling, server-side (5xx) errors and timeouts or dropped
 * connections are transient; everything else (validation, item too large, access denied, a missing table
 * or bucket) fails the same way every time, so retrying it would stall a shard or a batch run for good.
 */

/** Error names the SDK v3 gives throttling and capacity errors (they come with HTTP 400). */
const THROTTLING = new Set([
  'ThrottlingException',
  'Throttling',
  'ThrottledException',
  'TooManyRequestsException',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'RequestThrottledException',
  'SlowDown',
  'TransactionConflictException',
  'TransactionInProgressException',
  'LimitExceededException',
]);

/** Node and SDK errors of a connection that dropped or timed out before an answer. */
const NETWORK = new Set([
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
  'AbortError',
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'NetworkingError',
]);

interface AwsLikeError {
  readonly name?: string;
  readonly code?: string;
  readonly $fault?: 'client' | 'server';
  readonly $metadata?: { readonly httpStatusCode?: number };
  readonly $retryable?: { readonly throttling?: boolean };
}

export type ErrorKind = 'transient' | 'permanent';

export function classifyAwsError(error: unknown): ErrorKind {
  if (typeof error !== 'object' || error === null) return 'permanent';
  const e = error as AwsLikeError;
  const name = e.name ?? '';
  if (THROTTLING.has(name) || e.$retryable) return 'transient';
  if (NETWORK.has(name) || (e.code !== undefined && NETWORK.has(e.code))) return 'transient';
  const status = e.$metadata?.httpStatusCode;
  if (status !== undefined) return status >= 500 || status === 429 ? 'transient' : 'permanent';
  // An SDK error without an HTTP answer is a transport failure; a plain Error is a bug: both retried
  // only if the service said so, which it did not.
  return e.$fault === 'server' ? 'transient' : e.$metadata ? 'transient' : 'permanent';
}

export const isTransient = (error: unknown): boolean => classifyAwsError(error) === 'transient';

/** `ValidationException: The provided key element does not match the schema` */
export function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}
