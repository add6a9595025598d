import { describe, expect, it } from 'vitest';
import { deliveryWatermark, type DeliveryReading } from '../../shared/batch/delivery.js';
import { candidateHorizon, clockHorizon } from '../../shared/batch/run.js';
import { DEFAULT_SETTINGS } from '../../shared/resources.js';
import { HOUR_MS, MINUTE_MS } from '../../shared/time.js';

const T = Date.UTC(2026, 10, 25, 14, 0);
const at = (minutes: number, figures: Omit<DeliveryReading, 'atMs'>): DeliveryReading => ({
  atMs: T + minutes * MINUTE_MS,
  ...figures,
});

describe('the delivery watermark', () => {
  it('is the newest period less the largest freshness and the largest lag behind the stream of the window', () => {
    const readings = [
      at(0, { dataFreshnessMs: 400_000, millisBehindLatestMs: 1_000, recordsRead: 50 }),
      at(1, { dataFreshnessMs: 90_000, millisBehindLatestMs: 20_000, recordsRead: 50 }),
      at(2, { dataFreshnessMs: 60_000, millisBehindLatestMs: 0, recordsRead: 50 }),
    ];
    expect(deliveryWatermark(readings)).toBe(T + 2 * MINUTE_MS - 400_000 - 20_000);
  });

  it('counts a period without freshness as idle when Firehose read nothing in it', () => {
    expect(deliveryWatermark([at(0, { millisBehindLatestMs: 0, recordsRead: 0 })])).toBe(T);
    expect(deliveryWatermark([at(0, { millisBehindLatestMs: 0 })])).toBe(T);
  });

  it('proves nothing when Firehose read records but reports no delivery (blocked), or reports no reads at all', () => {
    expect(deliveryWatermark([at(0, { millisBehindLatestMs: 0, recordsRead: 12 })])).toBeUndefined();
    expect(deliveryWatermark([at(0, { dataFreshnessMs: 1_000, recordsRead: 12 })])).toBeUndefined();
    expect(deliveryWatermark([])).toBeUndefined();
  });
});

describe('the candidate horizon', () => {
  const now = T + 30 * MINUTE_MS;
  it('is what the clock allows when everything has landed', () => {
    expect(candidateHorizon(now, DEFAULT_SETTINGS, Infinity)).toBe(clockHorizon(now, DEFAULT_SETTINGS));
    expect(clockHorizon(now, DEFAULT_SETTINGS)).toBe(T);
  });

  it('passes an hour only once records that reached the stream up to 5 minutes after it have landed', () => {
    expect(candidateHorizon(now, DEFAULT_SETTINGS, T + 4 * MINUTE_MS)).toBe(T - HOUR_MS);
    expect(candidateHorizon(now, DEFAULT_SETTINGS, T + 5 * MINUTE_MS)).toBe(T);
    // Never ahead of the clock, however far the watermark.
    expect(candidateHorizon(now, DEFAULT_SETTINGS, now + HOUR_MS)).toBe(T);
    // Nothing proven (Firehose blocked, or silent): no hour.
    expect(candidateHorizon(now, DEFAULT_SETTINGS, undefined)).toBe(-Infinity);
  });
});
