import { describe, expect, it } from 'vitest';
import { createOriginVerifier } from '../../shared/collection/origin-verify.js';
import {
  RotationError,
  rotateOriginSecret,
  type OriginHeader,
  type RotationStep,
  type SecretVersions,
} from '../../shared/collection/rotation.js';

/**
 * The rotation's steps over in-memory ports that keep versions and staging labels the way Secrets Manager
 * documents them, and a distribution header; the collector's verifier reads the same store.
 */
function world(initial = 'first-value') {
  const versions = new Map<string, { value?: string; stages: Set<string> }>([
    ['v1', { value: initial, stages: new Set(['AWSCURRENT']) }],
  ]);
  const header = { value: initial, sets: 0 };
  const secret: SecretVersions = {
    async describe() {
      return {
        rotationEnabled: true,
        versions: Object.fromEntries([...versions].map(([id, v]) => [id, [...v.stages]])),
      };
    },
    async pendingValue(id) {
      const version = versions.get(id);
      return version?.stages.has('AWSPENDING') ? version.value : undefined;
    },
    async putPending(id, value) {
      versions.get(id)!.value = value;
    },
    async makeCurrent(id, from) {
      for (const v of versions.values()) v.stages.delete('AWSPREVIOUS');
      versions.get(from)!.stages.delete('AWSCURRENT');
      versions.get(from)!.stages.add('AWSPREVIOUS');
      versions.get(id)!.stages.delete('AWSPENDING');
      versions.get(id)!.stages.add('AWSCURRENT');
    },
  };
  const distribution: OriginHeader = {
    async values() {
      return [header.value];
    },
    async set(value) {
      header.value = value;
      header.sets += 1;
    },
  };
  /** Secrets Manager starts a rotation: a new version id, labelled AWSPENDING, without a value yet. */
  const startRotation = (id: string) => versions.set(id, { stages: new Set(['AWSPENDING']) });
  const staged = (stage: string) => [...versions.values()].find((v) => v.stages.has(stage))?.value;
  return { versions, header, secret, distribution, startRotation, staged };
}

const STEPS: RotationStep[] = ['createSecret', 'setSecret', 'testSecret', 'finishSecret'];

describe('origin secret rotation', () => {
  it('moves CloudFront and the secret to a new value while the collector accepts every request all along', async () => {
    const w = world();
    const verifier = createOriginVerifier({
      load: async () => ['AWSCURRENT', 'AWSPENDING', 'AWSPREVIOUS'].flatMap((s) => w.staged(s) ?? []),
      reloadIntervalMs: 0,
    });
    const sleeps: number[] = [];
    const deps = {
      secret: w.secret,
      header: w.distribution,
      newValue: () => 'second-value',
      sleep: async (ms: number) => void sleeps.push(ms),
    };
    w.startRotation('v2');
    for (const step of STEPS) {
      await rotateOriginSecret(step, 'v2', deps);
      // Whatever CloudFront sends at any point of the rotation passes.
      expect(await verifier.verify(w.header.value)).toBe(true);
    }
    expect(w.header.value).toBe('second-value');
    expect(w.staged('AWSCURRENT')).toBe('second-value');
    expect(w.staged('AWSPREVIOUS')).toBe('first-value');
    // Edges still on the old value pass until the next rotation.
    expect(await verifier.verify('first-value')).toBe(true);
    // CloudFront was told the new value only after the collectors' reload interval had passed twice.
    expect(sleeps).toEqual([20_000]);
  });

  it('repeats no work when Secrets Manager calls a step again', async () => {
    const w = world();
    let made = 0;
    const deps = {
      secret: w.secret,
      header: w.distribution,
      newValue: () => `value-${(made += 1)}`,
      sleep: async () => {},
    };
    w.startRotation('v2');
    await rotateOriginSecret('createSecret', 'v2', deps);
    await rotateOriginSecret('createSecret', 'v2', deps);
    expect(made).toBe(1);
    for (const step of STEPS.slice(1)) await rotateOriginSecret(step, 'v2', deps);
    const sets = w.header.sets;
    // The version is current now: every step is done.
    for (const step of STEPS) await rotateOriginSecret(step, 'v2', deps);
    expect(w.header.sets).toBe(sets);
    expect(w.staged('AWSCURRENT')).toBe('value-1');
  });

  it('refuses versions that are not pending, and a test that finds CloudFront on another value', async () => {
    const w = world();
    const deps = { secret: w.secret, header: w.distribution, sleep: async () => {} };
    await expect(rotateOriginSecret('createSecret', 'nope', deps)).rejects.toThrow(RotationError);
    w.versions.set('v3', { value: 'x', stages: new Set() });
    await expect(rotateOriginSecret('createSecret', 'v3', deps)).rejects.toThrow(/not pending/);
    w.startRotation('v2');
    await rotateOriginSecret('createSecret', 'v2', deps);
    await expect(rotateOriginSecret('testSecret', 'v2', deps)).rejects.toThrow(/does not send the pending/);
    await expect(rotateOriginSecret('setSecret', 'v4', deps)).rejects.toThrow(RotationError);
  });
});
