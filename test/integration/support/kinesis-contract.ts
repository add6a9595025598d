import { expect, inject } from 'vitest';

/**
 * A Kinesis sequence number as AWS documents it: "Pattern: 0|([1-9]\d{0,128})" (Kinesis API reference,
 * Record, PutRecordsResultEntry and SequenceNumberRange). The code relies on exactly this: decimal digits,
 * at most 129 of them (SEQUENCE_WIDTH), compared as numbers. Not on a length: moto issues 1, 2, 3…
 */
export const SEQUENCE_NUMBER = /^(0|[1-9]\d{0,128})$/;

/**
 * AWS's sequence numbers are in practice far longer than 20 digits, and kinesis-local (LocalStack's Kinesis
 * engine) issues them in that form: on the embedded emulators, the tests keep asserting it.
 */
const AWS_SHAPED = /^\d{20,}$/;

export function expectSequenceNumber(sequenceNumber: string | undefined): void {
  expect(sequenceNumber).toMatch(SEQUENCE_NUMBER);
  if (inject('emulators').embedded) expect(sequenceNumber).toMatch(AWS_SHAPED);
}
