import { readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { PageViewsResponse } from '../../shared/api-types.js';
import { HOUR_MS, hourBucket, toIso } from '../../shared/time.js';
import {
  alive,
  ANY_PORTS,
  newStateDir,
  npm,
  npmStart,
  processesOf,
  stackFile,
  until,
  type NpmProcess,
} from './support/npm-process.js';

/** Each test runs the real `npm start` (or another npm script) as a user would, in its own process group. */

const runs: NpmProcess[] = [];
const run = (npmProcess: NpmProcess) => (runs.push(npmProcess), npmProcess);
afterEach(() => {
  for (const npmProcess of runs.splice(0)) {
    npmProcess.kill();
    rmSync(npmProcess.dir, { recursive: true, force: true });
  }
});

/** The latest number a progress line reports for a counter, e.g. `files landed 3`. */
const lastCount = (output: string, label: string): number => {
  const counts = [...output.matchAll(new RegExp(`${label} (\\d+)`, 'g'))];
  return counts.length ? Number(counts[counts.length - 1]![1]) : 0;
};

/** kinesis-local saves the stream as it exits; cut short, the next start could not load it. */
const savedStream = (dir: string) =>
  JSON.parse(readFileSync(join(dir, 'data', 'emulators', 'kinesis', 'kinesis-data.json'), 'utf8')) as {
    streams: unknown;
  };

async function expectStoppedCleanly(stack: NpmProcess, signalledAt: number): Promise<void> {
  const exit = await stack.exited;
  expect(exit, stack.output().slice(-3000)).toEqual({ code: 0, signal: null, at: exit.at });
  expect(exit.at - signalledAt, 'stop time (ms)').toBeLessThan(10_000);
  expect(stack.output()).toMatch(/stopped in \d+\.\d s/);
  expect(processesOf(stack.dir), 'processes of the stack still running').toEqual([]);
  expect(stackFile(stack.dir), 'the stack file is removed').toBeUndefined();
  expect(savedStream(stack.dir).streams).toBeDefined();
}

describe('npm start', () => {
  it('counts generated traffic through the API, keeps its stack file private, and stops on SIGTERM to its process group', async () => {
    const stack = run(npmStart(['--generate', '50', '--batch-interval', '5', ...ANY_PORTS]));
    const file = await until('the stack file', () => stackFile(stack.dir));
    expect(file.emulatorPids).toHaveLength(3);
    for (const pid of file.emulatorPids) expect(alive(pid)).toBe(true);
    expect(Object.keys(file.endpoints).sort()).toEqual(['dynamodb', 'kinesis', 's3']);
    expect(statSync(join(stack.dir, 'stack.json')).mode & 0o777).toBe(0o600);
    expect(file.credentials).toEqual({ accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' });

    expect((await fetch(`${file.apiUrl}/v1/status`)).status).toBe(200);
    // Browser collection: the collector, the tracker and the demo site that loads it, with their URLs printed.
    const demoSite = await until(
      'the printed demo site URL',
      () => /Demo site\s+(http:\/\/\S+?)\/\s/.exec(stack.output())?.[1],
    );
    // The collector answers behind its CloudFront stand-in; the tag carries the versioned URL and its SRI hash.
    expect(file.collectorUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1\/events$/);
    expect(stack.output()).toContain(`Collector      POST ${file.collectorUrl}`);
    const edge = file.collectorUrl!.replace('/v1/events', '');
    const tag = /<script defer src="([^"]+)" integrity="(sha384-[^"]+)"/.exec(stack.output());
    expect(tag?.[1]).toMatch(new RegExp(`^${edge}/pv\\.[0-9a-f]{12}\\.js$`));
    expect((await fetch(tag![1]!)).status).toBe(200);
    expect(await (await fetch(`${demoSite}/app/reports`)).text()).toContain(`src="${tag![1]}"`);
    const from = hourBucket(Date.now());
    const url = `${file.apiUrl}/v1/pageviews?from=${toIso(from)}&to=${toIso(from + HOUR_MS)}&granularity=minute`;
    const counted = await until('counted page views', async () => {
      const body = (await (await fetch(url)).json()) as PageViewsResponse;
      return body.total > 0 ? body.total : undefined;
    });
    expect(counted).toBeGreaterThan(0);
    await until('a batch run in the log', () =>
      stack.output().includes('batch run: H = ') ? true : undefined,
    );

    const signalledAt = Date.now();
    process.kill(-stack.child.pid!, 'SIGTERM');
    await expectStoppedCleanly(stack, signalledAt);
    for (const pid of file.emulatorPids) expect(alive(pid), `emulator ${pid}`).toBe(false);
  });

  it('stops within 10 s on Ctrl-C (SIGINT to the whole process group) under generated traffic and batch runs every 3 s', async () => {
    const stack = run(npmStart(['--generate', '200', '--batch-interval', '3', ...ANY_PORTS]));
    const file = await until('the stack file', () => stackFile(stack.dir));
    // Load in every layer: the speed layer counts, Firehose lands files, and batch runs read them.
    await until(
      'events counted, files landed and batch runs over them',
      () =>
        lastCount(stack.output(), 'counters written') > 0 &&
        lastCount(stack.output(), 'files landed') > 0 &&
        lastCount(stack.output(), 'batch runs') >= 3
          ? true
          : undefined,
      120_000,
    );
    // Right as a batch run starts computing, so that the stop meets one in flight.
    const computing = stack.output().split('computing').length;
    await until('the next batch run', () =>
      stack.output().split('computing').length > computing ? true : undefined,
    );

    const signalledAt = Date.now();
    process.kill(-stack.child.pid!, 'SIGINT');
    await expectStoppedCleanly(stack, signalledAt);
    for (const pid of [file.pid, ...file.emulatorPids]) expect(alive(pid), `process ${pid}`).toBe(false);
    expect(stack.output()).not.toMatch(/ECONNREFUSED|socket hang up/);
  });

  it('leaves no emulator 5 s after the stack is killed with SIGKILL, refuses a second stack on the same folder meanwhile, and tools then report the stack file as stale', async () => {
    const stack = run(npmStart(['--generate', '100', ...ANY_PORTS]));
    const file = await until('the stack file', () => stackFile(stack.dir));
    await until('events counted', () => (lastCount(stack.output(), 'events in') > 0 ? true : undefined));

    const second = run(npmStart(ANY_PORTS, stack.dir));
    expect((await second.exited).code).toBe(2);
    expect(second.output()).toContain(`a local stack is already running from ${stack.dir} (pid ${file.pid}`);

    process.kill(file.pid, 'SIGKILL');
    const killedAt = Date.now();
    await until(
      'every process of the stack gone',
      () => (processesOf(stack.dir).length === 0 ? true : undefined),
      5000,
    );
    expect(Date.now() - killedAt).toBeLessThan(5000);
    for (const pid of file.emulatorPids) expect(alive(pid), `emulator ${pid}`).toBe(false);
    expect(savedStream(stack.dir).streams).toBeDefined();

    const generator = run(npm(['run', 'generate', '--', '--out', 'kinesis', '--count', '1'], stack.dir));
    expect((await generator.exited).code).toBe(2);
    expect(generator.output()).toContain('no local stack is running');
    expect(generator.output()).toContain(`is stale: the stack that wrote it (pid ${file.pid}`);
    expect(generator.output()).not.toContain('    at ');
  });

  describe('a taken port', () => {
    let squatter: Server;
    afterEach(() => void squatter?.close());

    it('is refused before any emulator starts, naming the port, the process that holds it and the fix', async () => {
      squatter = createServer();
      await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
      const port = (squatter.address() as { port: number }).port;

      const stack = run(npmStart([...ANY_PORTS, '--dynamodb-port', String(port)]));
      const exit = await stack.exited;
      expect(exit.code, stack.output()).toBe(2);
      expect(stack.output()).toContain(
        `error: port ${port} (dynamodb) is already in use by pid ${process.pid}`,
      );
      expect(stack.output()).toContain('--dynamodb-port 0 to pick a free one');
      expect(stack.output()).not.toContain('    at ');
      expect(stackFile(stack.dir)).toBeUndefined();
      expect(processesOf(stack.dir)).toEqual([]);
    });
  });
});

describe('tools without a local stack', () => {
  it.each([
    [
      'the generator',
      ['run', 'generate', '--', '--out', 'kinesis', '--count', '1'],
      '--stream and AWS credentials',
    ],
    [
      'npm run rebuild',
      ['run', 'rebuild', '--', '--from', '2026-01-01T00:00:00Z', '--to', '2026-01-01T01:00:00Z'],
      'invoke the batch function',
    ],
  ])('%s says that no local stack is running and exits 2', async (_tool, args, alternative) => {
    const dir = newStateDir();
    const tool = run(npm(args, dir));
    expect((await tool.exited).code, tool.output()).toBe(2);
    expect(tool.output()).toContain(
      `error: no local stack is running (no ${join(dir, 'stack.json')}): start one with \`npm start\``,
    );
    expect(tool.output()).toContain(alternative);
    expect(tool.output()).not.toContain('    at ');
  });
});
