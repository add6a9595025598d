import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { GenerationSummary, PageViewGenerator } from '../shared/generator.js';
import { toIso } from '../shared/time.js';
import { parseNumber, runCli, UsageError } from '../scripts/cli.js';
import { sendTraffic } from '../scripts/traffic.js';
import { DEFAULT_PORTS } from './emulators.js';
import { buildDashboard } from '../dashboard/build.js';
import { startLocalStack } from './stack.js';
import { LOCAL_DIR, STACK_FILE, writeStackFile } from './stack-file.js';

const USAGE = `Usage: npm start -- [options]

Runs the whole pipeline locally: Kinesis, DynamoDB and S3 emulators, the speed, batch and API handlers
driven by local stand-ins for the event source mapping, Firehose, the schedule and API Gateway.

  --generate RATE        also send generated page views at RATE events/s
  --shards N             shards of the local stream (default 2)
  --batch-interval SEC   seconds between batch runs (default 60)
  --fresh                start from empty state (deletes .local/)
  --api-port N           HTTP API port (default 3000; 0 = any free port); also serves the collector and /pv.js
  --site-port N          demo site that loads the tracker (default 3001; 0 = any free port)
  --kinesis-port N, --dynamodb-port N, --s3-port N
                         emulator ports (defaults ${DEFAULT_PORTS.kinesis}, ${DEFAULT_PORTS.dynamodb}, ${DEFAULT_PORTS.s3}; 0 = any free port)

State lives in ${LOCAL_DIR} (set PAGEVIEWS_LOCAL_DIR to move it); endpoints are written to ${STACK_FILE}.
Ctrl-C stops everything.`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      generate: { type: 'string' },
      shards: { type: 'string', default: '2' },
      'batch-interval': { type: 'string', default: '60' },
      fresh: { type: 'boolean', default: false },
      'api-port': { type: 'string', default: '3000' },
      'site-port': { type: 'string', default: '3001' },
      'kinesis-port': { type: 'string', default: String(DEFAULT_PORTS.kinesis) },
      'dynamodb-port': { type: 'string', default: String(DEFAULT_PORTS.dynamodb) },
      's3-port': { type: 'string', default: String(DEFAULT_PORTS.s3) },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return;
  }
  const port = (name: string, value: string) => parseNumber(value, `--${name}`, { min: 0, max: 65535 })!;
  const rate = parseNumber(values.generate, '--generate', { min: 0.001, max: 100_000 });
  const shards = parseNumber(values.shards, '--shards', { min: 1, max: 50 })!;
  const batchInterval = parseNumber(values['batch-interval'], '--batch-interval', { min: 1 })!;
  if (!Number.isInteger(shards)) throw new UsageError('--shards must be a whole number');
  if (values.fresh && existsSync(LOCAL_DIR)) rmSync(LOCAL_DIR, { recursive: true, force: true });

  const log = (line: string) => process.stdout.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);
  log('starting the emulators (kinesis-local, DynamoDB Local, s3rver)…');
  let stopping = false;
  const dashboard = await buildDashboard();
  const stack = await startLocalStack({
    dataDir: join(LOCAL_DIR, 'data'),
    ports: {
      kinesis: port('kinesis-port', values['kinesis-port']),
      dynamodb: port('dynamodb-port', values['dynamodb-port']),
      s3: port('s3-port', values['s3-port']),
      api: port('api-port', values['api-port']),
    },
    shards,
    batchIntervalMs: batchInterval * 1000,
    staticDir: dashboard,
    demoSitePort: port('site-port', values['site-port']),
    log,
    onCrash: (service, detail) => {
      if (stopping) return;
      log(`!! the ${service} emulator died: ${detail}`);
      void shutdown(1);
    },
  });
  writeStackFile({
    region: stack.region,
    credentials: stack.credentials,
    endpoints: stack.endpoints,
    names: stack.config.names,
    apiUrl: stack.apiUrl,
    pid: process.pid,
    emulatorPids: stack.pids,
    startedAt: new Date().toISOString(),
  });

  const { names } = stack.config;
  log('local stack is up');
  const lines = [
    `  API            ${stack.apiUrl}`,
    `    GET ${stack.apiUrl}/v1/pageviews?from=…&to=…&granularity=minute|hour|day[&by=url|country|browser|status][&top=N]`,
    `    GET ${stack.apiUrl}/v1/status`,
    `    GET ${stack.apiUrl}/v1/openapi.json`,
    ...(existsSync(dashboard) ? [`  Dashboard      ${stack.apiUrl}/`] : []),
    `  Collector      POST ${stack.collectorUrl}   (public; sites 127.0.0.1, localhost)`,
    `  Tracker        ${stack.trackerUrl}   <script defer src="${stack.trackerUrl}"></script>`,
    ...(stack.demoSiteUrl
      ? [
          `  Demo site      ${stack.demoSiteUrl}/   (pages and a single-page app at /app/ that load the tracker)`,
        ]
      : []),
    `  Kinesis        ${stack.endpoints.kinesis}   stream ${names.stream} (${shards} shards)`,
    `  DynamoDB       ${stack.endpoints.dynamodb}   tables ${Object.values(names.tables).join(', ')}`,
    `  S3             ${stack.endpoints.s3}   bucket ${names.bucket}`,
    `  Stack file     ${STACK_FILE}`,
    `  Send events    npm run generate -- --out kinesis --rate 100 --duration 60`,
  ];
  process.stdout.write(lines.join('\n') + '\n');

  const traffic = new AbortController();
  const summary = new GenerationSummary();
  let generating: Promise<unknown> = Promise.resolve();
  if (rate) {
    log(`generating ${rate} page views/s`);
    generating = sendTraffic({
      kinesis: stack.clients.kinesis,
      stream: names.stream,
      generator: new PageViewGenerator({ seed: Date.now() % 2 ** 31, startMs: Date.now(), rate }),
      rate,
      total: Infinity,
      summary,
      signal: traffic.signal,
    }).catch((error: unknown) =>
      log(`generator stopped: ${error instanceof Error ? error.message : String(error)}`),
    );
  }

  const progress = setInterval(() => {
    const s = stack.stats();
    log(
      `events in ${s.eventsIn} | counters written ${s.countersWritten} | dead letters ${s.deadLetters} | ` +
        `files landed ${s.filesLanded} (${s.recordsLanded} events) | batch runs ${s.batchRuns}` +
        `${s.horizon === undefined ? '' : ` (H ${toIso(s.horizon)})`} | API requests ${s.apiRequests}` +
        (rate ? ` | generated ${summary.records}` : ''),
    );
  }, 5000);

  async function shutdown(code: number): Promise<void> {
    if (stopping) return;
    stopping = true;
    log('stopping…');
    clearInterval(progress);
    traffic.abort();
    await generating;
    // A dead emulator can leave a stand-in waiting: give the orderly stop a deadline.
    await Promise.race([stack.stop(), new Promise((resolve) => setTimeout(resolve, 15_000).unref())]);
    rmSync(STACK_FILE, { force: true });
    log('stopped');
    process.exit(code);
  }
  process.once('SIGINT', () => void shutdown(0));
  process.once('SIGTERM', () => void shutdown(0));
}

runCli(main);
