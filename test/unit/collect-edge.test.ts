import { describe, expect, it } from 'vitest';
import { createOriginVerifier, fixedOriginSecret } from '../../shared/collection/origin-verify.js';
import { buildTracker } from '../../shared/collection/tracker.js';
import { trackerAsset, trackerPathVersion, trackerScriptTag } from '../../shared/collection/tracker-asset.js';
import { RateRule } from '../../local/cloudfront.js';

/** A secret store whose values the test changes, counting reads. */
function store(initial: string[]) {
  const state = { values: initial, reads: 0, failing: false };
  return {
    state,
    load: async () => {
      state.reads += 1;
      if (state.failing) throw new Error('Secrets Manager is unavailable');
      return state.values;
    },
  };
}

describe('origin secret check', () => {
  it('passes the values CloudFront sends and refuses anything else, and no header at all', async () => {
    const check = fixedOriginSecret('s3cret-value');
    expect(await check.verify('s3cret-value')).toBe(true);
    for (const value of [undefined, '', 's3cret-valu', 's3cret-value ', 'S3CRET-VALUE']) {
      expect(await check.verify(value)).toBe(false);
    }
  });

  it('accepts every version a rotation leaves in force: current, pending, previous', async () => {
    const secrets = store(['current', 'pending', 'previous']);
    const check = createOriginVerifier({ load: secrets.load });
    for (const value of ['current', 'pending', 'previous']) expect(await check.verify(value)).toBe(true);
    expect(secrets.state.reads).toBe(1);
  });

  it('learns a new value by reading the secret again, at most once per interval however many forgeries arrive', async () => {
    let now = 0;
    const secrets = store(['old']);
    const check = createOriginVerifier({ load: secrets.load, clock: () => now, reloadIntervalMs: 10_000 });
    expect(await check.verify('old')).toBe(true);
    now = 10_000;
    const forged = await Promise.all(Array.from({ length: 50 }, (_, i) => check.verify(`forged-${i}`)));
    expect(forged.every((ok) => !ok)).toBe(true);
    expect(secrets.state.reads).toBe(2);
    // A rotation put a pending value; the first request that carries it after the interval is let in.
    secrets.state.values = ['old', 'new'];
    now = 15_000;
    expect(await check.verify('new')).toBe(false);
    now = 20_000;
    expect(await check.verify('new')).toBe(true);
    expect(secrets.state.reads).toBe(3);
  });

  it('keeps the values it knows when a reload fails, and says so', async () => {
    let now = 0;
    const errors: unknown[] = [];
    const secrets = store(['old']);
    const check = createOriginVerifier({
      load: secrets.load,
      clock: () => now,
      onReloadError: (error) => errors.push(error),
    });
    expect(await check.verify('old')).toBe(true);
    secrets.state.failing = true;
    now = 60_000;
    expect(await check.verify('unknown')).toBe(false);
    expect(await check.verify('old')).toBe(true);
    expect(errors).toHaveLength(1);
  });

  it('fails when the secret cannot be read at all: a collector without it cannot serve', async () => {
    const secrets = store([]);
    secrets.state.failing = true;
    await expect(createOriginVerifier({ load: secrets.load }).verify('x')).rejects.toThrow(/unavailable/);
  });
});

describe('the tracker as served', () => {
  const asset = trackerAsset(buildTracker().script);

  it('has a versioned URL that changes with the script, and its SRI hash', () => {
    expect(asset.path).toMatch(/^\/pv\.[0-9a-f]{12}\.js$/);
    expect(trackerAsset(`${asset.script}\n`).path).not.toBe(asset.path);
    expect(asset.integrity).toMatch(/^sha384-[A-Za-z0-9+/]{64}$/);
  });

  it('recognises its URLs: the unversioned one and any version', () => {
    expect(trackerPathVersion('/pv.js')).toEqual({});
    expect(trackerPathVersion(asset.path)).toEqual({ version: asset.version });
    expect(trackerPathVersion('/pv.0123456789ab.js')).toEqual({ version: '0123456789ab' });
    for (const path of ['/pv.JS', '/pv.0123.js', '/v1/events', '/pv.js/x'])
      expect(trackerPathVersion(path)).toBeUndefined();
  });

  it('gives a tag that loads it with CORS so that the browser checks the hash', () => {
    expect(trackerScriptTag('https://d1.cloudfront.net', asset)).toBe(
      `<script defer src="https://d1.cloudfront.net${asset.path}" integrity="${asset.integrity}" crossorigin="anonymous"></script>`,
    );
  });
});

describe('the local WAF rate rule', () => {
  it('admits a client up to the limit in a trailing window, then refuses it, while another client is admitted', () => {
    let now = 0;
    const rule = new RateRule(3, 1000, () => now);
    expect([1, 2, 3, 4].map(() => rule.admit('127.0.0.2'))).toEqual([true, true, true, false]);
    expect(rule.admit('127.0.0.3')).toBe(true);
    now = 999;
    expect(rule.admit('127.0.0.2')).toBe(false);
    now = 2000;
    expect(rule.admit('127.0.0.2')).toBe(true);
  });
});
