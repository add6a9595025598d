import { createHmac } from 'node:crypto';
import Bowser from 'bowser';
import { isbot } from 'isbot';
import { EVENT_LIMITS } from '../../shared/event.js';
import { dayBucket } from '../../shared/time.js';

/**
 * What the collector adds to a page view from the request, privacy first: no cookie is read or set, and the IP
 * address is used only inside the visitor hash, never stored or logged.
 */

const { BROWSER_MAP } = Bowser;

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

/** Crawlers, monitors and headless browsers by isbot's maintained list; and no User-Agent, which no browser sends. */
export function isBot(userAgent: string): boolean {
  return userAgent.trim() === '' || isbot(userAgent);
}

/**
 * How far a page's own clock may be from the collector's. A browser sends a page view the moment it happens,
 * so a larger difference is a wrong clock, not a late event. Ahead: the validator's own future bound. Behind:
 * an hour, which covers a producer's retries (a retry keeps its `created`, so it lands in the same hour and the
 * batch layer can drop it by eventId).
 */
export const CLIENT_CLOCK = {
  maxAheadMs: EVENT_LIMITS.maxFutureSkewMs,
  maxBehindMs: 60 * 60_000,
} as const;

/**
 * Event time of a page view: the page's `created` when it is an integer within CLIENT_CLOCK of the collector's
 * clock, the collector's clock when it is absent or out of that window (`corrected`). Other values (a string, a
 * fraction) are left for the validator to name.
 */
export function eventTime(created: unknown, nowMs: number): { created: unknown; corrected: boolean } {
  if (created === undefined) return { created: nowMs, corrected: false };
  if (!Number.isInteger(created)) return { created, corrected: false };
  const skew = (created as number) - nowMs;
  if (skew > CLIENT_CLOCK.maxAheadMs || -skew > CLIENT_CLOCK.maxBehindMs) {
    return { created: nowMs, corrected: true };
  }
  return { created, corrected: false };
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
}
