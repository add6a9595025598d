import type { ScheduledEvent } from 'aws-lambda';

/**
 * Plays the EventBridge schedule: invokes a handler with a scheduled event every interval, never two runs
 * at once (a tick that comes while a run is going is skipped, as a reserved concurrency of 1 would).
 */

export interface SchedulerOptions<R> {
  readonly intervalMs: number;
  readonly handler: (event: ScheduledEvent) => Promise<R>;
  readonly ruleArn?: string;
  readonly onResult?: (result: R) => void;
  readonly onError?: (error: unknown) => void;
  /** Run once right away. @default true */
  readonly runAtStart?: boolean;
}

export interface RunningScheduler {
  readonly stats: { runs: number; failures: number; skippedTicks: number };
  /** Runs now (or waits for the run in progress) and resolves with its result. */
  runNow(): Promise<void>;
  stop(): Promise<void>;
}

export function scheduledEvent(ruleArn: string, now = new Date()): ScheduledEvent {
  return {
    version: '0',
    id: crypto.randomUUID(),
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account: '000000000000',
    time: now.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    region: 'us-east-1',
    resources: [ruleArn],
    detail: {},
  };
}

export function startScheduler<R>(options: SchedulerOptions<R>): RunningScheduler {
  const stats = { runs: 0, failures: 0, skippedTicks: 0 };
  const ruleArn = options.ruleArn ?? 'arn:aws:events:us-east-1:000000000000:rule/batch-schedule';
  let running: Promise<void> | undefined;
  const run = (): Promise<void> => {
    if (running) {
      stats.skippedTicks += 1;
      return running;
    }
    running = options
      .handler(scheduledEvent(ruleArn))
      .then((result) => {
        stats.runs += 1;
        options.onResult?.(result);
      })
      .catch((error: unknown) => {
        stats.failures += 1;
        options.onError?.(error);
      })
      .finally(() => (running = undefined));
    return running;
  };
  const timer = setInterval(() => void run(), options.intervalMs);
  if (options.runAtStart ?? true) void run();
  return {
    stats,
    runNow: run,
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
