import type { Settings } from '../resources.js';
import { HOUR_MS, MINUTE_MS } from '../time.js';
import { SAFETY_MARGIN_MS } from './run.js';

/**
 * How long H may stall before someone must act. While H stays at an hour f (a failing day, a Firehose that
 * lags), the API serves [f, now) from speed counters, which expire `speedRetentionHours` after their minute:
 * once f's first counters expire, its answer drops to zero. The `HorizonBehindCandidate` alarm fires when H
 * trails what the clock allows by `HORIZON_LAG_ALARM_SECONDS`; the config check keeps at least
 * `MIN_RESPONSE_HOURS` between that alarm and the expiry (docs/faults.md).
 */

/** The alarm's threshold on `HorizonCandidateLagSeconds` (what the clock allows minus H). */
export const HORIZON_LAG_ALARM_SECONDS = 2 * 3600;
/** The least time between that alarm and the first expiry of counters that H does not cover. */
export const MIN_RESPONSE_HOURS = 24;

/**
 * Hours from the start of the hour H stalls at until the alarm fires, at the latest: the lag passes the
 * threshold at f + 2 h + buffer + margin, the next run (within a schedule period) publishes the metric, and the
 * alarm evaluates it over one period more.
 */
export function alarmAfterHours(settings: Settings): number {
  const ms =
    HORIZON_LAG_ALARM_SECONDS * 1000 +
    settings.firehoseBufferSeconds * 1000 +
    SAFETY_MARGIN_MS +
    2 * settings.batchScheduleMinutes * MINUTE_MS;
  return ms / HOUR_MS;
}

/** Hours between the alarm and the expiry of the first minute counters of the hour H stalls at. */
export function alarmToExpiryHours(settings: Settings): number {
  return settings.speedRetentionHours + MINUTE_MS / HOUR_MS - alarmAfterHours(settings);
}
