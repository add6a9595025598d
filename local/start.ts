import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { GenerationSummary, generatedSites, PageViewGenerator } from '../traffic/generator.js';
import { toIso } from '../shared/time.js';
import { parseNumber, runCli, UsageError } from '../tools/cli.js';
import { sendTraffic } from '../traffic/send.js';
import { DEFAULT_PORTS } from './emulators.js';
import { buildDashboard } from '../dashboard/build.js';
import { looksLikeLeftoverEmulator, PortTakenError } from './ports.js';
import { startLocalStack } from './stack.js';
import {
  displayPath,
  isRunning,
  LOCAL_DIR,
  localStackState,
  STACK_FILE,
  writeStackFile,
} from './stack-file.js';

/**
 * How long work in flight (a handler invocation, a Firehose flush, a batch run) may take to finish on stop
 * before it is abandoned; DynamoDB Local and s3rver then get EMULATOR_STOP_GRACE_MS to exit: within 10 s.
 */
const WORK_GRACE_MS = 4000;
const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

const USAGE = `Usage: npm start -- [options]

Runs the whole pipeline locally: Kinesis, DynamoDB and S3 emulators, the speed, batch and API handlers
driven by local stand-ins for the event source mapping, Firehose, the schedule and API Gateway.

  --generate RATE        also send generated page views at RATE events/s
  --sites N              the API answers for N generated sites, site1.example.com … (default 1: the default site);
                         --generate spreads its traffic over them, as npm run generate -- --sites N does
  --shards N             shards of the local stream (default 2)
  --batch-interval SEC   seconds between batch runs (default 60)
  --firehose-delay SEC   hold every Firehose delivery SEC seconds past its buffer (a lagging Firehose:
                         H waits for the data, docs/faults.md)
  --fresh                start from empty state (deletes .local/)
  --api-port N           HTTP API port (default 3000; 0 = any free port)
  --collector-port N     the collector's CloudFront stand-in: /v1/events and the tracker (default 3002; 0 = any)
  --site-port N          demo site that loads the tracker (default 3001; 0 = any free port)
  --kinesis-port N, --dynamodb-port N, --s3-port N
                         emulator ports (defaults ${DEFAULT_PORTS.kinesis}, ${DEFAULT_PORTS.dynamodb}, ${DEFAULT_PORTS.s3}; 0 = any free port)

State lives in ${LOCAL_DIR} (set PAGEVIEWS_LOCAL_DIR to move it); endpoints are written to ${STACK_FILE}.
Ctrl-C (or SIGTERM) stops everything within 10 s: work in flight gets ${WORK_GRACE_MS / 1000} s to finish, then is
abandoned (checkpoints make it resumable).`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      generate: { type: 'string' },
      sites: { type: 'string', default: '1' },
      shards: { type: 'string', default: '2' },
      'batch-interval': { type: 'string', default: '60' },
      'firehose-delay': { type: 'string', default: '0' },
      fresh: { type: 'boolean', default: false },
      'api-port': { type: 'string', default: '3000' },
      'site-port': { type: 'string', default: '3001' },
      'collector-port': { type: 'string', default: '3002' },
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
  const sites = generatedSites(parseNumber(values.sites, '--sites', { min: 1, max: 1000 })!);
  const batchInterval = parseNumber(values['batch-interval'], '--batch-interval', { min: 1 })!;
  const firehoseDelay = parseNumber(values['firehose-delay'], '--firehose-delay', { min: 0, max: 86_400 })!;
  if (!Number.isInteger(shards)) throw new UsageError('--shards must be a whole number');
  const log = (line: string) => process.stdout.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);
  // Log lines are best effort: a reader that went away (`npm start | head`) must not crash the stack mid-work.
  process.stdout.on('error', () => undefined);
  refuseSecondStack(log);
  if (values.fresh && existsSync(LOCAL_DIR)) rmSync(LOCAL_DIR, { recursive: true, force: true });

  // While starting, nothing is in flight: a signal exits at once, which closes the supervisors' pipes and so
  // stops the emulators.
  const exitDuringStartUp = (signal: NodeJS.Signals) => {
    log(`${signal} during start-up: exiting (the emulators stop with the stack)`);
    process.exit(0);
  };
  for (const signal of STOP_SIGNALS) process.on(signal, exitDuringStartUp);

  let stopping = false;
  log('starting the emulators (kinesis-local, DynamoDB Local, s3rver)…');
  const dashboard = await buildDashboard();
  const stack = await startLocalStack({
    dataDir: join(LOCAL_DIR, 'data'),
    ports: {
      kinesis: port('kinesis-port', values['kinesis-port']),
      dynamodb: port('dynamodb-port', values['dynamodb-port']),
      s3: port('s3-port', values['s3-port']),
      api: port('api-port', values['api-port']),
      collector: port('collector-port', values['collector-port']),
    },
    shards,
    settings: { sites },
    batchIntervalMs: batchInterval * 1000,
    firehoseDelaySeconds: firehoseDelay,
    staticDir: dashboard,
    demoSitePort: port('site-port', values['site-port']),
    log,
    onCrash: (service, detail) => {
      if (stopping) return;
      log(`!! the ${service} emulator died: ${detail}`);
      void shutdown(1);
    },
  }).catch((error: unknown) => {
    throw error instanceof PortTakenError ? withPortAdvice(error) : error;
  });
  writeStackFile({
    region: stack.region,
    credentials: stack.credentials,
    endpoints: stack.endpoints,
    names: stack.config.names,
    apiUrl: stack.apiUrl,
    collectorUrl: stack.collectorUrl,
    pid: process.pid,
    emulatorPids: stack.pids,
    startedAt: new Date().toISOString(),
  });

  const { names } = stack.config;
  log('local stack is up');
  const lines = [
    `  API            ${stack.apiUrl}`,
    `    GET ${stack.apiUrl}/v1/pageviews?from=…&to=…&granularity=minute|hour|day[&by=url|country|browser|status][&top=N]` +
      (sites.length > 0 ? '&site=…' : ''),
    `    GET ${stack.apiUrl}/v1/sites   (${['default', ...sites].join(', ')})`,
    `    GET ${stack.apiUrl}/v1/status`,
    `    GET ${stack.apiUrl}/v1/openapi.json`,
    ...(existsSync(dashboard) ? [`  Dashboard      ${stack.apiUrl}/`] : []),
    `  Collector      POST ${stack.collectorUrl}   (public, via a CloudFront stand-in; 127.0.0.1 and localhost count for the default site)`,
    `  Tracker        ${stack.trackerTag}`,
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
  if (rate) {
    log(`generating ${rate} page views/s`);
    sendTraffic({
      kinesis: stack.clients.kinesis,
      stream: names.stream,
      generator: new PageViewGenerator({ seed: Date.now() % 2 ** 31, startMs: Date.now(), rate, sites }),
      rate,
      total: Infinity,
      summary,
      signal: traffic.signal,
    }).catch((error: unknown) => {
      // Once stopping, a request cut short is expected: nothing to report.
      if (!traffic.signal.aborted)
        log(`generator stopped: ${error instanceof Error ? error.message : String(error)}`);
    });
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

  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    const stopStarted = Date.now();
    log('stopping…');
    // Tools that look now find no stack rather than one that is going away.
    rmSync(STACK_FILE, { force: true });
    clearInterval(progress);
    traffic.abort();
    await stack.stop({ graceMs: WORK_GRACE_MS });
    log(`stopped in ${((Date.now() - stopStarted) / 1000).toFixed(1)} s`);
    process.exit(code);
  };
  // A terminal's Ctrl-C reaches every process of the foreground group and npm forwards it once more:
  // the first signal stops the stack, later ones find it stopping already.
  for (const signal of STOP_SIGNALS) {
    process.off(signal, exitDuringStartUp);
    process.on(signal, () => void shutdown(0));
  }
}

/** Two stacks on one state folder would share emulator data: the second one is refused. */
function refuseSecondStack(log: (line: string) => void): void {
  const state = localStackState();
  if (state.state === 'running' && state.stack.pid !== process.pid) {
    throw new UsageError(
      `a local stack is already running from ${LOCAL_DIR} (pid ${state.stack.pid}, API ${state.stack.apiUrl ?? 'not up yet'}): ` +
        `stop it (Ctrl-C in its terminal, or \`kill ${state.stack.pid}\`), or set PAGEVIEWS_LOCAL_DIR to run another one`,
    );
  }
  if (state.state === 'stale') {
    log(`${displayPath()} is stale: its stack (pid ${state.stack.pid}) did not stop cleanly`);
    const leftovers = state.stack.emulatorPids.filter(isRunning);
    if (leftovers.length > 0) {
      log(
        `!! its emulators may still be running (pids ${leftovers.join(', ')}): if a port is taken below, ` +
          `check them with \`ps -p ${leftovers.join(',')}\` and stop them with \`kill ${leftovers.join(' ')}\``,
      );
    }
  }
}

/** A taken port, with the two ways out: stop its holder, or let the stack pick a free port. */
function withPortAdvice(error: PortTakenError): UsageError {
  const leftover = looksLikeLeftoverEmulator(error.holder)
    ? ` It looks like an emulator left behind by an earlier local stack: stop it with \`kill ${error.holder!.pid}\`.`
    : '';
  return new UsageError(
    `${error.message}.${leftover} Free the port, or pass --${error.what}-port 0 to pick a free one ` +
      `(the stack never uses a server it did not start).`,
  );
}

runCli(main);
