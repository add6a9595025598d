import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Checks the origin secret CloudFront adds to every request it sends to the collector. The accepted values are the
 * secret's current, pending and previous versions: during a rotation (lambdas/origin-secret) the distribution's
 * edges switch from the old value to the new one over minutes, and both must pass meanwhile.
 *
 * An unknown value makes the verifier read the secret again, at most once per `reloadIntervalMs` (so a flood of
 * forged values costs at most one Secrets Manager read per interval per container), and the rotation waits longer
 * than that before CloudFront sends a new value, so no container refuses a value it could have known.
 */

export const ORIGIN_SECRET_RELOAD_MS = 10_000;

export interface OriginCheck {
  /** Whether a request's origin-verify header value is one CloudFront sends. */
  verify(value: string | undefined): Promise<boolean>;
}

export interface OriginVerifierOptions {
  /** Reads the values to accept (e.g. the secret's AWSCURRENT, AWSPENDING and AWSPREVIOUS versions). */
  readonly load: () => Promise<readonly string[]>;
  readonly clock?: () => number;
  /** @default ORIGIN_SECRET_RELOAD_MS */
  readonly reloadIntervalMs?: number;
  /** Told when a reload fails; the values read before stay in force. */
  readonly onReloadError?: (error: unknown) => void;
}

const digest = (value: string) => createHash('sha256').update(value).digest();

export function createOriginVerifier(options: OriginVerifierOptions): OriginCheck {
  const clock = options.clock ?? Date.now;
  const interval = options.reloadIntervalMs ?? ORIGIN_SECRET_RELOAD_MS;
  let accepted: readonly Buffer[] | undefined;
  let loadedAt = -Infinity;
  let loading: Promise<void> | undefined;

  const load = () => {
    loading ??= options
      .load()
      .then((values) => {
        accepted = values.filter((v) => v.length > 0).map(digest);
      })
      .finally(() => {
        loadedAt = clock();
        loading = undefined;
      });
    return loading;
  };
  // Digests of equal length, compared in constant time: the answer does not tell how much of a guess was right.
  const known = (value: Buffer) => accepted!.some((a) => timingSafeEqual(a, value));

  return {
    async verify(value) {
      if (!value) return false;
      // The first load's failure propagates: a collector that cannot read its secret cannot serve.
      if (!accepted) await load();
      const candidate = digest(value);
      if (known(candidate)) return true;
      if (clock() - loadedAt < interval) return false;
      try {
        await load();
      } catch (error) {
        options.onReloadError?.(error);
        return false;
      }
      return known(candidate);
    },
  };
}

/** A verifier for one fixed value: the local stack and tests, where nothing rotates. */
export function fixedOriginSecret(secret: string): OriginCheck {
  return createOriginVerifier({ load: async () => [secret], reloadIntervalMs: Infinity });
}
