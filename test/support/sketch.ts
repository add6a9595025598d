import { expect } from 'vitest';
import { SPARSE_LIMIT, STANDARD_ERROR } from '../../shared/sketch/index.js';

/** The hash whose register index is `index` and whose 32 value bits are `w` (low 6 bits zero). */
export const hashWith = (index: number, w: number): number => index * 2 ** 38 + w * 2 ** 6;

/** Hashes at the edges of the register arithmetic: w = 0, 1, 2^31, 2^32 − 1; h = 0, 2^52 − 1. */
export const EDGE_HASHES: readonly number[] = [
  0,
  2 ** 52 - 1,
  hashWith(0, 1),
  hashWith(1, 0),
  hashWith(2, 2 ** 31),
  hashWith(3, 2 ** 31 - 1),
  hashWith(4, 2 ** 32 - 1),
  hashWith(16383, 0),
  hashWith(16383, 1) + 63,
  hashWith(8191, 2 ** 16) + 1,
];

/**
 * Visitors as the layers must report them: exact up to the sparse limit, within three standard errors of the
 * exact distinct count above it (the accuracy bar).
 */
export function expectVisitors(actual: number | null | undefined, exact: number, what = 'visitors'): void {
  if (exact <= SPARSE_LIMIT) {
    expect(actual, what).toBe(exact);
  } else {
    expect(Math.abs(actual! - exact), `${what}: ${actual} for ${exact}`).toBeLessThanOrEqual(
      3 * STANDARD_ERROR * exact,
    );
  }
}
