import { randomBytes } from 'node:crypto';
import { ORIGIN_SECRET_RELOAD_MS } from './origin-verify.js';

/**
 * Rotation of the origin secret, the value CloudFront adds to every request it sends to the collector
 * (shared/collection/edge.ts). Secrets Manager drives it through its four steps (Secrets Manager user guide,
 * "Rotation by Lambda function"); the distribution's origin custom header is the secret's one consumer:
 *
 * - createSecret: a new random value becomes the AWSPENDING version (the collector accepts it from now on, after
 *   its next reload);
 * - setSecret: after the collectors' reload interval has passed twice, the distribution's origin header is set to
 *   the pending value (its edges switch over within minutes; the old value keeps passing as AWSCURRENT, then
 *   AWSPREVIOUS);
 * - testSecret: the distribution's configuration carries the pending value;
 * - finishSecret: the pending version becomes AWSCURRENT (the old one AWSPREVIOUS).
 *
 * Plain steps over two small ports, so that the same code runs against AWS and, in the tests, against stand-ins.
 */

export type RotationStep = 'createSecret' | 'setSecret' | 'testSecret' | 'finishSecret';

/** The secret's versions, as Secrets Manager keeps them. */
export interface SecretVersions {
  /** Version id → its staging labels; and whether rotation is on. */
  describe(): Promise<{
    readonly rotationEnabled: boolean;
    readonly versions: Readonly<Record<string, readonly string[]>>;
  }>;
  /** The value of the pending version `versionId`; undefined before createSecret has stored one. */
  pendingValue(versionId: string): Promise<string | undefined>;
  /** Stores a new version under `versionId` with the AWSPENDING label. */
  putPending(versionId: string, value: string): Promise<void>;
  /** Moves AWSCURRENT to `versionId` from the version that carries it. */
  makeCurrent(versionId: string, fromVersionId: string): Promise<void>;
}

/** Where CloudFront keeps the header: the distribution's origins. */
export interface OriginHeader {
  /** The header's value on every origin that carries it. */
  values(): Promise<readonly string[]>;
  /** Sets the header on every origin that carries it. */
  set(value: string): Promise<void>;
}

export class RotationError extends Error {
  override readonly name = 'RotationError';
}

export interface RotationDeps {
  readonly secret: SecretVersions;
  readonly header: OriginHeader;
  readonly newValue?: () => string;
  readonly sleep?: (ms: number) => Promise<void>;
  /** How long setSecret waits before CloudFront sends the new value. @default twice the collector's reload interval */
  readonly settleMs?: number;
}

/** 256 random bits, base64url: a header value without characters that need quoting. */
export const newOriginSecret = () => randomBytes(32).toString('base64url');

export async function rotateOriginSecret(
  step: RotationStep,
  token: string,
  deps: RotationDeps,
): Promise<void> {
  const { rotationEnabled, versions } = await deps.secret.describe();
  if (!rotationEnabled) throw new RotationError('rotation is not enabled on the origin secret');
  const stages = versions[token];
  if (!stages) throw new RotationError(`version ${token} is not a version of the origin secret`);
  // A version that is already current has nothing left to do (Secrets Manager may call a step again).
  if (stages.includes('AWSCURRENT')) return;
  if (!stages.includes('AWSPENDING')) throw new RotationError(`version ${token} is not pending rotation`);

  switch (step) {
    case 'createSecret': {
      if ((await deps.secret.pendingValue(token)) === undefined)
        await deps.secret.putPending(token, (deps.newValue ?? newOriginSecret)());
      return;
    }
    case 'setSecret': {
      const pending = await pendingValue(deps.secret, token);
      // A collector that read the secret just before createSecret may not read it again for one interval: wait
      // two, so that every collector can know the new value before the first request carries it.
      await (deps.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms))))(
        deps.settleMs ?? 2 * ORIGIN_SECRET_RELOAD_MS,
      );
      await deps.header.set(pending);
      return;
    }
    case 'testSecret': {
      const pending = await pendingValue(deps.secret, token);
      const values = await deps.header.values();
      if (values.length === 0 || values.some((v) => v !== pending))
        throw new RotationError('the distribution does not send the pending origin secret');
      return;
    }
    case 'finishSecret': {
      const current = Object.entries(versions).find(([, labels]) => labels.includes('AWSCURRENT'));
      if (!current) throw new RotationError('the origin secret has no current version');
      await deps.secret.makeCurrent(token, current[0]);
      return;
    }
  }
}

async function pendingValue(secret: SecretVersions, token: string): Promise<string> {
  const value = await secret.pendingValue(token);
  if (value === undefined)
    throw new RotationError(`version ${token} has no value yet (createSecret did not run)`);
  return value;
}
