import { parseArgs } from 'node:util';
import { createAwsClients, type AwsClients } from '../shared/aws-clients.js';
import { GenerationSummary, generatedSites, PageViewGenerator } from '../traffic/generator.js';
import { resourceNames } from '../shared/resources.js';
import { toIso } from '../shared/time.js';
import {
  clientOptionsFor,
  localStackState,
  noLocalStackMessage,
  NoLocalStackError,
} from '../local/stack-file.js';
import { parseInstant, parseNumber, runCli, UsageError } from '../tools/cli.js';
import { sendTraffic } from '../traffic/send.js';

const USAGE = `Usage: npm run generate -- [options]

  --out stdout|kinesis   where records go (default stdout: JSON lines)
  --count N              records to produce
  --duration SECONDS     or: produce for this long of event time (default 10 s when no --count)
  --rate N               events per second (default 100); kinesis output is paced in real time
  --seed N               PRNG seed (default 1): same seed, same records
  --start TIME           event time of the first record, ISO-8601 or epoch ms; "now" is the default for
                         kinesis, 2026-01-01T00:00:00Z for stdout (so that a seed gives the same bytes)
  --late FRACTION        share of records created --late-lag in the past (default 0)
  --late-lag SECONDS     how late late records are (default 3600)
  --duplicates FRACTION  share of records that re-send the previous record's bytes (default 0)
  --malformed FRACTION   share of records that break a validation rule (default 0)
  --hostile FRACTION     share of hostile records (default 0): values at every length limit in 1- to 4-byte
                         UTF-8 characters, # ? % emoji and right-to-left text, values that differ only after
                         1,000 bytes, re-sends with the same eventId, records just inside and outside each rule
  --urls N               distinct pages (default 100)
  --sites N              spread traffic over N sites, site1.example.com … siteN.example.com (default 1: no site
                         field, the stack's default site); start the stack with the same --sites to query them
  --users N              size of the user-id space (default 1000000)
  --stream NAME          Kinesis stream (default: the running local stack's, from .local/stack.json);
                         without a local stack, a deployed stream reached with your AWS credentials
  --quiet                no progress lines

A summary goes to stderr at the end (and on Ctrl-C).`;

const DETERMINISTIC_START = Date.UTC(2026, 0, 1);

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: 'string', default: 'stdout' },
      count: { type: 'string' },
      duration: { type: 'string' },
      rate: { type: 'string', default: '100' },
      seed: { type: 'string', default: '1' },
      start: { type: 'string' },
      late: { type: 'string', default: '0' },
      'late-lag': { type: 'string', default: '3600' },
      duplicates: { type: 'string', default: '0' },
      malformed: { type: 'string', default: '0' },
      hostile: { type: 'string', default: '0' },
      urls: { type: 'string', default: '100' },
      sites: { type: 'string', default: '1' },
      users: { type: 'string', default: '1000000' },
      stream: { type: 'string' },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return;
  }
  const out = values.out;
  if (out !== 'stdout' && out !== 'kinesis')
    throw new UsageError(`--out must be stdout or kinesis, got "${out}"`);
  const rate = parseNumber(values.rate, '--rate', { min: 0.001, max: 1e7 })!;
  const count = parseNumber(values.count, '--count', { min: 0 });
  const duration = parseNumber(values.duration, '--duration', { min: 0 });
  if (count !== undefined && duration !== undefined)
    throw new UsageError('give --count or --duration, not both');
  const total = Math.floor(count ?? (duration ?? 10) * rate);
  const startMs =
    values.start === undefined || values.start === 'now'
      ? out === 'stdout' && values.start === undefined
        ? DETERMINISTIC_START
        : Date.now()
      : parseInstant(values.start, '--start');
  const generator = new PageViewGenerator({
    seed: parseNumber(values.seed, '--seed')!,
    startMs,
    rate,
    lateFraction: parseNumber(values.late, '--late', { min: 0, max: 1 }),
    lateLagMs: parseNumber(values['late-lag'], '--late-lag', { min: 0 })! * 1000,
    duplicateFraction: parseNumber(values.duplicates, '--duplicates', { min: 0, max: 1 }),
    malformedFraction: parseNumber(values.malformed, '--malformed', { min: 0, max: 1 }),
    hostileFraction: parseNumber(values.hostile, '--hostile', { min: 0, max: 1 }),
    urlCount: parseNumber(values.urls, '--urls', { min: 1 }),
    sites: generatedSites(parseNumber(values.sites, '--sites', { min: 1, max: 1000 })!),
    userCount: parseNumber(values.users, '--users', { min: 1 }),
  });
  const summary = new GenerationSummary();
  const report = () => printSummary(summary, out);
  process.once('SIGINT', () => {
    report();
    process.exit(130);
  });

  if (out === 'stdout') {
    await writeStdout(generator, total, summary);
  } else {
    await sendToKinesis(generator, total, summary, rate, values.stream, values.quiet);
  }
  report();
}

async function writeStdout(
  generator: PageViewGenerator,
  total: number,
  summary: GenerationSummary,
): Promise<void> {
  const newline = Buffer.from('\n');
  let buffered: Buffer[] = [];
  const flush = async () => {
    if (buffered.length === 0) return;
    const chunk = Buffer.concat(buffered);
    buffered = [];
    if (!process.stdout.write(chunk)) await new Promise((resolve) => process.stdout.once('drain', resolve));
  };
  for (const record of generator.take(total)) {
    summary.add(record);
    buffered.push(Buffer.from(record.data), newline);
    if (buffered.length >= 2000) await flush();
  }
  await flush();
}

/** Where kinesis output goes: AWS_ENDPOINT_URL, else the running local stack, else a deployed --stream. */
function kinesisTarget(streamOption: string | undefined): {
  clients: AwsClients;
  stream: string;
  where: string;
} {
  const hasEndpoint = Object.keys(process.env).some((k) => k.startsWith('AWS_ENDPOINT_URL'));
  if (!hasEndpoint) {
    const local = localStackState();
    if (local.state === 'running') {
      return {
        clients: createAwsClients(clientOptionsFor(local.stack)),
        stream: streamOption ?? local.stack.names.stream,
        where: `local stack (${local.stack.endpoints.kinesis})`,
      };
    }
    if (!streamOption) {
      throw new NoLocalStackError(
        noLocalStackMessage(local, ', or pass --stream and AWS credentials for a deployed stream'),
      );
    }
  }
  return {
    clients: createAwsClients(),
    stream: streamOption ?? resourceNames().stream,
    where: process.env.AWS_ENDPOINT_URL_KINESIS ?? process.env.AWS_ENDPOINT_URL ?? 'AWS',
  };
}

async function sendToKinesis(
  generator: PageViewGenerator,
  total: number,
  summary: GenerationSummary,
  rate: number,
  streamOption: string | undefined,
  quiet: boolean,
): Promise<void> {
  const { clients, stream, where } = kinesisTarget(streamOption);
  if (!quiet) process.stderr.write(`sending ${total} records at ${rate}/s to ${stream} on ${where}\n`);
  try {
    await sendTraffic({
      kinesis: clients.kinesis,
      stream,
      generator,
      rate,
      total,
      summary,
      ...(quiet
        ? {}
        : {
            onRetry: (n: number, attempt: number) =>
              process.stderr.write(`  re-sending ${n} failed entries (attempt ${attempt + 1})\n`),
            onProgress: (sent: number, retried: number) =>
              process.stderr.write(`  ${sent}/${total} sent (${retried} re-sent entries)\n`),
          }),
    });
  } catch (error) {
    if (error instanceof Error && error.name === 'CredentialsProviderError') {
      throw new UsageError(
        `no AWS credentials for stream ${stream} on ${where} (${error.message}): configure them ` +
          '(AWS_PROFILE, `aws configure` or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), or start a local stack with `npm start`',
      );
    }
    throw error;
  } finally {
    clients.destroy();
  }
}

function printSummary(summary: GenerationSummary, out: string): void {
  const lines = [
    `generated ${summary.records} records to ${out}: ${summary.events} distinct events ` +
      `(valid ${summary.byKind.valid}, late ${summary.byKind.late}, hostile ${summary.byKind.hostile}), ` +
      `${summary.byKind.duplicate} re-sends of an earlier event (same eventId), ` +
      `${summary.records - summary.accepted} invalid`,
  ];
  if (Object.keys(summary.malformations).length > 0) {
    lines.push(
      `  invalid by rule: ${Object.entries(summary.malformations)
        .map(([rule, n]) => `${rule}=${n}`)
        .join(' ')}`,
    );
  }
  if (summary.events > 0)
    lines.push(`  event time ${toIso(summary.minCreated)} .. ${toIso(summary.maxCreated)}`);
  process.stderr.write(lines.join('\n') + '\n');
}

runCli(main);
