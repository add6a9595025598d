import { createHmac } from 'node:crypto';
import Bowser from 'bowser';
import { isbot } from 'isbot';
import type { Device } from '../event.js';
import { dayBucket } from '../time.js';

/**
 * What the collector adds to a page view from the request, privacy first: no cookie is read or set, and the IP
 * address is used only inside the visitor hash, never stored or logged.
 */

const { BROWSER_MAP, OS_MAP } = Bowser;

/** Browser families as the project counts them (the generator's tokens), by bowser's browser name. */
export const BROWSER_TOKENS: Readonly<Record<string, string>> = {
  [BROWSER_MAP.chrome!]: 'CH',
  [BROWSER_MAP.chromium!]: 'CH',
  [BROWSER_MAP.safari!]: 'SF',
  [BROWSER_MAP.firefox!]: 'FF',
  [BROWSER_MAP.edge!]: 'ED',
  [BROWSER_MAP.opera!]: 'OP',
  [BROWSER_MAP.samsung_internet!]: 'SI',
  [BROWSER_MAP.ie!]: 'IE',
};
/** Every other browser, and a User-Agent bowser cannot name. */
export const OTHER_BROWSER = 'OT';

export function browserToken(userAgent: string): string {
  const name = Bowser.getParser(userAgent || ' ').getBrowserName();
  return BROWSER_TOKENS[name] ?? OTHER_BROWSER;
}

/** Operating systems as counted (tokens: the event model's `os` rule), by bowser's OS name; any other is `Other`. */
export const OS_TOKENS: Readonly<Record<string, string>> = {
  [OS_MAP.Windows!]: 'Windows',
  [OS_MAP.MacOS!]: 'macOS',
  [OS_MAP.iOS!]: 'iOS',
  [OS_MAP.Android!]: 'Android',
  [OS_MAP.Linux!]: 'Linux',
  [OS_MAP.ChromeOS!]: 'ChromeOS',
  [OS_MAP.HarmonyOS!]: 'HarmonyOS',
};
export const OTHER_OS = 'Other';

/** The device class and operating system a User-Agent names (bowser's platform type and OS name). */
export function deviceAndOs(userAgent: string): { device: Device; os: string } {
  const parser = Bowser.getParser(userAgent || ' ');
  const type = parser.getPlatformType();
  const device: Device = type === 'desktop' || type === 'mobile' || type === 'tablet' ? type : 'other';
  return { device, os: OS_TOKENS[parser.getOSName()] ?? OTHER_OS };
}

/** Crawlers, monitors and headless browsers by isbot's maintained list; and no User-Agent, which no browser sends. */
export function isBot(userAgent: string): boolean {
  return userAgent.trim() === '' || isbot(userAgent);
}

/**
 * Event time is the collector's receive time. A tracker may say how long ago the page view happened (`age`, in
 * milliseconds by the page's own clock, which is never compared with ours: only a duration on one clock is used),
 * so that a retried beacon keeps the time of its first attempt and lands in the same hour, where the batch layer
 * counts its eventId once. The age counts up to `maxMs`: a page view can be placed at most five minutes before it
 * was received, which covers the tracker's retries (docs/collector.md) and no more, so no sender can put page
 * views into hours the batch layer has already computed.
 */
export const EVENT_AGE = { maxMs: 5 * 60_000 } as const;

/**
 * `created` of a page view received at `receivedMs` with the tracker's `age`: anything but a non-negative number
 * counts as 0, and an age beyond EVENT_AGE is cut to it (`clamped`).
 */
export function eventTime(age: unknown, receivedMs: number): { created: number; clamped: boolean } {
  const ms = typeof age === 'number' && Number.isFinite(age) && age > 0 ? Math.floor(age) : 0;
  return { created: receivedMs - Math.min(ms, EVENT_AGE.maxMs), clamped: ms > EVENT_AGE.maxMs };
}

/**
 * Cookieless visitor ids, Plausible's way: a keyed hash of (daily salt, site, IP address, User-Agent). The same
 * browser on the same site gets the same id all day (UTC) and a new, unlinkable one the next day; the IP address
 * cannot be read back from the id. The daily salt is derived from a secret key, so only a holder of the key
 * could recompute a day's salt and test guesses: the key lives in Secrets Manager, readable by the collector only.
 */
export class VisitorIds {
  private day = Number.NaN;
  private salt: Buffer = Buffer.alloc(0);

  constructor(private readonly key: string | Uint8Array) {
    if (key.length < 16) throw new RangeError('the visitor key must hold at least 16 bytes');
  }

  /** The day's salt: HMAC-SHA256(key, "salt:YYYY-MM-DD"). */
  saltFor(nowMs: number): Buffer {
    const day = dayBucket(nowMs);
    if (day !== this.day) {
      this.salt = createHmac('sha256', this.key)
        .update(`salt:${new Date(day).toISOString().slice(0, 10)}`)
        .digest();
      this.day = day;
    }
    return this.salt;
  }

  /** 128 bits of HMAC-SHA256(salt, site NUL ip NUL userAgent), base64url: 22 printable characters. */
  visitorId(site: string, ip: string, userAgent: string, nowMs: number): string {
    return createHmac('sha256', this.saltFor(nowMs))
      .update(`${site}\0${ip}\0${userAgent}`)
      .digest()
      .subarray(0, 16)
      .toString('base64url');
  }

  /**
   * The Kinesis partition key of an event: keyed by the day's salt, so no sender can choose its shard (a chosen
   * eventId could otherwise aim every record at one shard), and the same for a visitor's retries of one page view.
   */
  partitionKey(visitorId: string, eventId: string, nowMs: number): string {
    return createHmac('sha256', this.saltFor(nowMs))
      .update(`partition\0${visitorId}\0${eventId}`)
      .digest()
      .subarray(0, 16)
      .toString('base64url');
  }
}
