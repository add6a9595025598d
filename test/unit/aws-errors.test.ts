import { describe, expect, it } from 'vitest';
import { classifyAwsError } from '../../shared/aws-errors.js';

/** An error shaped like the SDK v3's service exceptions. */
const serviceError = (
  name: string,
  status: number,
  fault: 'client' | 'server' = status >= 500 ? 'server' : 'client',
) => Object.assign(new Error(name), { name, $fault: fault, $metadata: { httpStatusCode: status } });

describe('which AWS errors a retry can fix', () => {
  it.each([
    ['ProvisionedThroughputExceededException', 400],
    ['ThrottlingException', 400],
    ['RequestLimitExceeded', 400],
    ['TransactionConflictException', 400],
    ['SlowDown', 503],
    ['InternalServerError', 500],
    ['ServiceUnavailable', 503],
    ['InternalFailure', 500],
    ['TooManyRequestsException', 429],
  ])('retries %s (HTTP %i)', (name, status) => {
    expect(classifyAwsError(serviceError(name, status))).toBe('transient');
  });

  it.each([
    ['ValidationException', 400],
    ['ResourceNotFoundException', 400],
    ['AccessDeniedException', 400],
    ['ItemCollectionSizeLimitExceededException', 400],
    ['SerializationException', 400],
    ['NoSuchBucket', 404],
    ['AccessDenied', 403],
  ])('never retries %s (HTTP %i)', (name, status) => {
    expect(classifyAwsError(serviceError(name, status))).toBe('permanent');
  });

  it('retries timeouts and dropped connections, which have no HTTP answer', () => {
    expect(classifyAwsError(Object.assign(new Error('timed out'), { name: 'TimeoutError' }))).toBe(
      'transient',
    );
    expect(classifyAwsError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }))).toBe(
      'transient',
    );
  });

  it('does not retry a plain programming error', () => {
    expect(classifyAwsError(new TypeError('x is undefined'))).toBe('permanent');
    expect(classifyAwsError('a string')).toBe('permanent');
  });
});
