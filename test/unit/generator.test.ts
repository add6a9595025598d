import { describe, expect, it } from 'vitest';
import { decodePageView, EVENT_LIMITS } from '../../shared/event.js';
import { HOSTILE_CASES } from '../../traffic/hostile.js';
import {
  GenerationSummary,
  generatedSites,
  PageViewGenerator,
  type GeneratorOptions,
} from '../../traffic/generator.js';
import { putRecordsChunks, PUT_RECORDS_MAX_ENTRIES } from '../../shared/kinesis-producer.js';

const START = Date.UTC(2026, 0, 1);
const generate = (count: number, options: Partial<GeneratorOptions> = {}) => [
  ...new PageViewGenerator({ seed: 1, startMs: START, rate: 100, ...options }).take(count),
];

describe('page-view generator', () => {
  it('gives the same bytes for the same seed and different bytes for another', () => {
    const bytes = (seed: number) =>
      Buffer.concat(generate(500, { seed }).map((r) => Buffer.from(r.data))).toString();
    expect(bytes(7)).toBe(bytes(7));
    expect(bytes(7)).not.toBe(bytes(8));
  });

  it('produces only valid events by default, spaced by the rate', () => {
    const records = generate(1000);
    for (const record of records) expect(decodePageView(record.data, START + 60_000).ok).toBe(true);
    expect(records[999]!.event!.created - records[0]!.event!.created).toBe(9990);
  });

  it('spreads traffic over the sites it is given, the first the busiest, each event naming its site', () => {
    const sites = generatedSites(3);
    expect(sites).toEqual(['site1.example.com', 'site2.example.com', 'site3.example.com']);
    expect(generatedSites(1)).toEqual([]);
    const counts = new Map<string, number>();
    for (const record of generate(3000, { sites })) {
      const decoded = decodePageView(record.data, START + 60_000);
      expect(decoded.ok && decoded.event.site).toBe(record.event!.site);
      counts.set(record.event!.site, (counts.get(record.event!.site) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual(sites);
    expect(counts.get(sites[0]!)!).toBeGreaterThan(counts.get(sites[2]!)!);
    // Without sites every event is the default site's, and the other fields are drawn as before.
    const plain = generate(50).map((r) => r.event!);
    expect(new Set(plain.map((e) => e.site))).toEqual(new Set(['default']));
  });

  it('makes about the asked share of malformed records, each rejected for the rule it breaks', () => {
    const records = generate(5000, { malformedFraction: 0.1 });
    const malformed = records.filter((r) => r.kind === 'malformed');
    expect(malformed.length).toBeGreaterThan(400);
    expect(malformed.length).toBeLessThan(600);
    for (const record of malformed) {
      const result = decodePageView(record.data, START + 60_000);
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.rejection.violation).toBe(record.malformation);
    }
  });

  it('makes late records lag by the asked amount and duplicates repeat earlier bytes', () => {
    const records = generate(2000, { lateFraction: 0.1, lateLagMs: 3_600_000, duplicateFraction: 0.05 });
    const late = records.filter((r) => r.kind === 'late');
    expect(late.length).toBeGreaterThan(100);
    for (const record of late) {
      const index = records.indexOf(record);
      expect(record.event!.created).toBe(START + Math.floor(index * 10) - 3_600_000);
    }
    const duplicates = records.map((r, i) => [r, i] as const).filter(([r]) => r.kind === 'duplicate');
    expect(duplicates.length).toBeGreaterThan(50);
    for (const [record, i] of duplicates) expect(record.data).toEqual(records[i - 1]!.data);
  });

  it('summarises what it produced', () => {
    const summary = new GenerationSummary();
    for (const record of generate(1000, { malformedFraction: 0.2, duplicateFraction: 0.1 }))
      summary.add(record);
    expect(summary.records).toBe(1000);
    expect(summary.events + summary.byKind.duplicate + summary.byKind.malformed).toBe(1000);
  });

  it('skews traffic: the top page gets more views than the tenth', () => {
    const byUrl = new Map<string, number>();
    for (const r of generate(10_000)) byUrl.set(r.event!.url, (byUrl.get(r.event!.url) ?? 0) + 1);
    expect(byUrl.get('http://www.example.com/id=1')!).toBeGreaterThan(
      3 * byUrl.get('http://www.example.com/id=10')!,
    );
  });
});

describe('hostile mode', () => {
  const records = generate(3000, { hostileFraction: 0.5, duplicateFraction: 0.02 });
  const hostile = records.filter((r) => r.hostileCase);

  it('covers every hostile case, each valid or rejected as it claims', () => {
    expect(new Set(hostile.map((r) => r.hostileCase)).size).toBe(HOSTILE_CASES.length + 1);
    for (const record of hostile) {
      const result = decodePageView(record.data, START + 3_600_000);
      if (record.event) expect(result).toEqual({ ok: true, event: record.event });
      else expect(result.ok ? 'accepted' : result.rejection.violation).toBe(record.malformation);
    }
  });

  it('gives every event an eventId and re-sends keep the eventId of the event they repeat', () => {
    const events = records.filter((r) => r.event);
    for (const record of events) expect(record.event!.eventId).toMatch(/^[\x21-\x7e]{1,64}$/);
    const resends = records.filter((r) => r.kind === 'duplicate');
    expect(resends.length).toBeGreaterThan(100);
    const ids = new Set(events.filter((r) => r.kind !== 'duplicate').map((r) => r.event!.eventId));
    expect(ids.size).toBe(events.length - resends.length);
    for (const record of resends) expect(ids.has(record.event!.eventId)).toBe(true);
  });

  it('sends urls at the byte limit in every UTF-8 width', () => {
    const widths = new Set(
      hostile
        .filter((r) => r.event && Buffer.byteLength(r.event.url) === EVENT_LIMITS.maxUrlBytes)
        .map((r) => Math.max(...[...r.event!.url].map((c) => Buffer.byteLength(c)))),
    );
    expect([...widths].sort()).toEqual([1, 2, 3, 4]);
  });
});

describe('PutRecords chunking', () => {
  it('keeps requests within 500 entries and 5 MiB', () => {
    const small = Array.from({ length: 1201 }, () => ({ data: new Uint8Array(10), partitionKey: 'k' }));
    expect([...putRecordsChunks(small)].map((c) => c.length)).toEqual([PUT_RECORDS_MAX_ENTRIES, 500, 201]);
    const big = Array.from({ length: 12 }, () => ({ data: new Uint8Array(1024 * 1024), partitionKey: 'k' }));
    expect([...putRecordsChunks(big)].map((c) => c.length)).toEqual([4, 4, 4]);
  });
});
