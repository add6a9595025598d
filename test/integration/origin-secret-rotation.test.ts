import { randomBytes } from 'node:crypto';
import { CreateSecretCommand, DescribeSecretCommand } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ORIGIN_SECRET_RELOAD_MS } from '../../shared/collection/origin-verify.js';
import { createRotationHandler, type RotationHandler } from '../../lambdas/origin-secret/handler.js';
import type { RotationStep } from '../../shared/collection/rotation.js';
import { createAwsClients, type AwsClients } from '../../shared/aws-clients.js';
import { secretStageValue, secretStageValues } from '../../shared/secrets.js';
import { localSecretName } from '../support/aws-fidelity/stack-model.js';
import {
  createOriginDistribution,
  originHeaderValues,
  startMoto,
  startRotation,
  type RunningMoto,
} from './support/moto.js';

/**
 * The origin secret's rotation function with its real adapters (lambdas/origin-secret/handler.ts) against Secrets
 * Manager's and CloudFront's APIs as moto plays them, through a whole rotation in the order Secrets Manager calls
 * the steps. After each step: the secret's staging labels, the value the distribution sends, and that the collector
 * (which accepts the AWSCURRENT, AWSPENDING and AWSPREVIOUS values) accepts it.
 */

describe('rotating the origin secret on Secrets Manager and CloudFront', () => {
  let moto: RunningMoto;
  let clients: AwsClients;
  let secretArn: string;
  let distributionId: string;
  let token: string;
  let rotate: RotationHandler;
  /** How long setSecret waited before CloudFront was told the new value. */
  const waits: number[] = [];
  const initial = randomBytes(32).toString('base64url');

  beforeAll(async () => {
    moto = await startMoto();
    const { region, credentials } = inject('emulators');
    clients = createAwsClients({
      region,
      credentials,
      endpoints: { secretsmanager: moto.endpoint, cloudfront: moto.endpoint },
    });
    const prefix = `r-${randomBytes(3).toString('hex')}`;
    secretArn = (
      await clients.secretsManager.send(
        new CreateSecretCommand({ Name: localSecretName(prefix, 'originSecret'), SecretString: initial }),
      )
    ).ARN!;
    distributionId = await createOriginDistribution(clients.cloudfront, initial);
    token = await startRotation(clients.secretsManager, secretArn);
    rotate = createRotationHandler({
      clients,
      distributionId,
      settle: { sleep: async (ms) => void waits.push(ms) },
    });
  });
  afterAll(async () => {
    clients?.destroy();
    await moto?.stop();
  });

  const step = (Step: RotationStep) => rotate({ Step, SecretId: secretArn, ClientRequestToken: token });
  const stages = async () =>
    (await clients.secretsManager.send(new DescribeSecretCommand({ SecretId: secretArn })))
      .VersionIdsToStages;
  const value = (stage: 'AWSCURRENT' | 'AWSPENDING' | 'AWSPREVIOUS') =>
    secretStageValue(clients.secretsManager, secretArn, stage);
  const sent = () => originHeaderValues(clients.cloudfront, distributionId);
  /** What the collector's origin check accepts (lambdas/collect/handler.ts loads these stages). */
  const accepted = () =>
    secretStageValues(clients.secretsManager, secretArn, ['AWSCURRENT', 'AWSPENDING', 'AWSPREVIOUS']);

  it('createSecret stores a new random value as the pending version; CloudFront still sends the current one', async () => {
    await step('createSecret');
    const pending = await value('AWSPENDING');
    expect(pending).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(pending).not.toBe(initial);
    expect(await value('AWSCURRENT')).toBe(initial);
    expect((await stages())?.[token]).toEqual(['AWSPENDING']);
    expect(await sent()).toEqual([initial]);
    expect(await accepted()).toEqual([initial, pending]);
  });

  it('createSecret called again keeps the pending value it stored', async () => {
    const pending = await value('AWSPENDING');
    await step('createSecret');
    expect(await value('AWSPENDING')).toBe(pending);
  });

  it('testSecret refuses while CloudFront does not send the pending value', async () => {
    await expect(step('testSecret')).rejects.toThrow(/does not send the pending origin secret/);
  });

  it("setSecret waits twice the collectors' reload interval, then has CloudFront send the pending value", async () => {
    await step('setSecret');
    expect(waits).toEqual([2 * ORIGIN_SECRET_RELOAD_MS]);
    const pending = await value('AWSPENDING');
    expect(await sent()).toEqual([pending]);
    expect(await accepted()).toContain(pending);
    expect(await value('AWSCURRENT')).toBe(initial);
  });

  it('testSecret passes once the distribution sends the pending value', async () => {
    await expect(step('testSecret')).resolves.toBeUndefined();
  });

  it('finishSecret makes the new value current and the old one previous; the collector accepts both', async () => {
    const pending = (await value('AWSPENDING'))!;
    await step('finishSecret');
    const labels = await stages();
    expect(labels?.[token]).toEqual(expect.arrayContaining(['AWSCURRENT']));
    expect(labels?.[token]).not.toContain('AWSPREVIOUS');
    const previous = Object.entries(labels ?? {}).filter(([, l]) => l.includes('AWSPREVIOUS'));
    expect(previous).toHaveLength(1);
    expect(await value('AWSCURRENT')).toBe(pending);
    expect(await value('AWSPREVIOUS')).toBe(initial);
    expect(await sent()).toEqual([pending]);
    expect(await accepted()).toEqual(expect.arrayContaining([pending, initial]));
  });

  it('a step Secrets Manager calls again after finishSecret changes nothing', async () => {
    const before = { stages: await stages(), sent: await sent() };
    for (const again of ['createSecret', 'setSecret', 'testSecret', 'finishSecret'] as const)
      await step(again);
    expect({ stages: await stages(), sent: await sent() }).toEqual(before);
    expect(waits).toHaveLength(1);
  });
});
