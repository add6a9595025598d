import { createHash } from 'node:crypto';
import {
  add,
  decode,
  encode,
  encodeBinary,
  estimate,
  fromHashes,
  SPARSE_LIMIT,
  STANDARD_ERROR,
  union,
  unionAll,
  userHash,
  type VisitorSketch,
} from '../shared/sketch/index.js';
import { percentile } from './support/stats.js';
import type { BenchFigure, BenchSection } from './support/types.js';
import { benchMain } from './support/cli.js';

/**
 * Visitor sketches against the naive exact answer, a Set of user ids (stored as a JSON array of ids), in
 * the same run: bytes per sketch, add/union/estimate throughput, the API's 7-day merge of 168 hourly
 * buckets, and the estimates' measured error. In-process, no emulators.
 */

/** User ids as the collector makes them: 22 base64url characters. */
const userIds = (prefix: string, count: number): string[] =>
  Array.from({ length: count }, (_, i) =>
    createHash('sha256').update(`${prefix}${i}`).digest().subarray(0, 16).toString('base64url'),
  );

/**
 * Median CPU time (user + system) of `work`, in seconds, over `rounds` runs after one warm-up: CPU time,
 * as in the speed section, so that a busy neighbour on a shared machine does not decide the figure.
 */
function medianSeconds(rounds: number, work: () => unknown): number {
  work();
  const samples: number[] = [];
  for (let i = 0; i < rounds; i += 1) {
    const before = process.cpuUsage();
    work();
    const used = process.cpuUsage(before);
    samples.push((used.user + used.system) / 1e6);
  }
  return percentile(samples, 50);
}

const jsonBytes = (value: unknown): number => Buffer.byteLength(JSON.stringify(value));

export const sketchBench: BenchSection = async ({ quick, log }) => {
  const rounds = quick ? 5 : 15;
  const figures: BenchFigure[] = [];
  const figure = (f: Omit<BenchFigure, 'section'>) => figures.push({ section: 'sketch', ...f });

  log('sketch: hashing user ids');
  const ids = userIds('bench-', 200_000);
  const hashSeconds = medianSeconds(rounds, () => ids.map(userHash));
  const hashes = ids.map(userHash);
  figure({
    metric: 'userHash (SHA-256, top 52 bits), ids/s per core',
    value: Math.round(ids.length / hashSeconds),
    unit: 'ids/s',
    note: '22-character ids as the collector makes them',
  });

  for (const size of [SPARSE_LIMIT, 1_000, 100_000]) {
    const sketch = fromHashes(hashes.slice(0, size));
    const naive = jsonBytes(ids.slice(0, size));
    const json = jsonBytes(encode(sketch));
    figure({
      metric: `bytes of a ${size.toLocaleString('en-US')}-visitor sketch as JSON (${sketch.kind})`,
      value: json,
      unit: 'bytes',
      baseline: naive,
      ratio: naive / json,
      note: `binary form ${encodeBinary(sketch).length} bytes; baseline: the JSON array of the user ids; ratio = naive / sketch`,
    });
  }

  const size = 100_000;
  const addSeconds = medianSeconds(rounds, () => fromHashes(hashes.slice(0, size)));
  const naiveAddSeconds = medianSeconds(rounds, () => new Set(ids.slice(0, size)));
  figure({
    metric: 'add (fromHashes), hashes/s per core',
    value: Math.round(size / addSeconds),
    unit: 'adds/s',
    baseline: Math.round(size / naiveAddSeconds),
    ratio: naiveAddSeconds / addSeconds,
    note: `${size.toLocaleString('en-US')} distinct hashes into one sketch; baseline: the ids into a Set<string>; ratio = ours / naive throughput`,
  });
  const dense = fromHashes(hashes.slice(0, size));
  const oneAddSeconds = medianSeconds(rounds, () => hashes.slice(size, size + 10_000).reduce(add, dense));
  figure({
    metric: 'add (one hash to a dense sketch, copy on change), hashes/s per core',
    value: Math.round(10_000 / oneAddSeconds),
    unit: 'adds/s',
    note: 'the functional add on a 100,000-visitor sketch; bulk work goes through fromHashes',
  });

  const [left, right] = [fromHashes(hashes.slice(0, size)), fromHashes(hashes.slice(size / 2, size * 1.5))];
  const [leftIds, rightIds] = [new Set(ids.slice(0, size)), new Set(ids.slice(size / 2, size * 1.5))];
  const unionSeconds = medianSeconds(rounds, () => {
    for (let i = 0; i < 100; i += 1) union(left, right);
  });
  const naiveUnionSeconds = medianSeconds(rounds, () => new Set([...leftIds, ...rightIds]));
  figure({
    metric: 'union of two dense sketches, unions/s per core',
    value: Math.round(100 / unionSeconds),
    unit: 'unions/s',
    baseline: Math.round(1 / naiveUnionSeconds),
    ratio: naiveUnionSeconds / (unionSeconds / 100),
    note: `${size.toLocaleString('en-US')} visitors each, half shared; baseline: the union of two Set<string>; ratio = ours / naive`,
  });
  const [smallLeft, smallRight] = [fromHashes(hashes.slice(0, 128)), fromHashes(hashes.slice(64, 192))];
  const sparseUnionSeconds = medianSeconds(rounds, () => {
    for (let i = 0; i < 1000; i += 1) union(smallLeft, smallRight);
  });
  figure({
    metric: 'union of two sparse sketches, unions/s per core',
    value: Math.round(1000 / sparseUnionSeconds),
    unit: 'unions/s',
    note: '128 visitors each, half shared',
  });
  const estimateSeconds = medianSeconds(rounds, () => {
    for (let i = 0; i < 100; i += 1) estimate(dense);
  });
  figure({
    metric: 'estimate of a dense sketch, estimates/s per core',
    value: Math.round(100 / estimateSeconds),
    unit: 'estimates/s',
    note: 'Ertl 2017 improved raw estimator over 16,384 registers',
  });

  log('sketch: the API merge of 168 hourly buckets');
  // 7 days of hourly buckets, each 2,000 visitors drawn from a returning audience of 50,000.
  const hours = Array.from({ length: 168 }, (_, h) =>
    Array.from({ length: 2_000 }, (_, i) => ((h * 7_919 + i * 104_729) % 50_000) + (i % 7)),
  );
  const storedSketches = hours.map((hour) => JSON.stringify(encode(fromHashes(hour.map((i) => hashes[i]!)))));
  const storedIds = hours.map((hour) => JSON.stringify(hour.map((i) => ids[i]!)));
  const exact = new Set(hours.flat()).size;
  let merged: VisitorSketch | undefined;
  const mergeSeconds = medianSeconds(rounds, () => {
    merged = unionAll(storedSketches.map((text) => decode(JSON.parse(text) as number[] | string)));
    return estimate(merged);
  });
  const naiveMergeSeconds = medianSeconds(rounds, () => {
    const seen = new Set<string>();
    for (const text of storedIds) for (const id of JSON.parse(text) as string[]) seen.add(id);
    return seen.size;
  });
  figure({
    metric: '7 days of hourly buckets: parse + union + estimate visitors',
    value: Number((mergeSeconds * 1000).toFixed(2)),
    unit: 'ms',
    baseline: Number((naiveMergeSeconds * 1000).toFixed(2)),
    ratio: naiveMergeSeconds / mergeSeconds,
    note: `168 buckets of 2,000 visitors, ${exact.toLocaleString('en-US')} distinct; estimate ${estimate(merged!)}; baseline: JSON id arrays into a Set; ratio = naive / ours`,
  });
  const sketchBytes = storedSketches.reduce((sum, text) => sum + text.length, 0);
  const idBytes = storedIds.reduce((sum, text) => sum + text.length, 0);
  figure({
    metric: '7 days of hourly buckets: bytes read',
    value: sketchBytes,
    unit: 'bytes',
    baseline: idBytes,
    ratio: idBytes / sketchBytes,
    note: 'JSON sketches against JSON id arrays; ratio = naive / ours',
  });

  log('sketch: measured error');
  for (const visitors of [1_000, 10_000, 100_000]) {
    const samples = Math.min(quick ? 10 : 40, Math.floor(hashes.length / visitors));
    let squares = 0;
    for (let i = 0; i < samples; i += 1) {
      const relative = estimate(fromHashes(hashes.slice(i * visitors, (i + 1) * visitors))) / visitors - 1;
      squares += relative * relative;
    }
    figure({
      metric: `relative error of the estimate at ${visitors.toLocaleString('en-US')} visitors (RMS)`,
      value: Number((100 * Math.sqrt(squares / samples)).toFixed(3)),
      unit: '%',
      note: `${samples} disjoint samples; standard error 1.04/√m = ${(100 * STANDARD_ERROR).toFixed(2)}%`,
    });
  }
  return figures;
};

benchMain(import.meta.url, sketchBench);
