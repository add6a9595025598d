import { DEFAULT_SETTINGS } from '../../shared/resources.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../infra/config.js';
import { PageViewsStack } from '../../infra/stack.js';
import { duckdbConnection, sqlString } from '../../local/duckdb.js';
import { asRecords, parquetBytes } from '../../local/parquet.js';
import { QUERY_RESERVE_MS } from '../../shared/batch/athena-engine.js';
import { FUNCTIONS } from '../../shared/call-ledger.js';
import { COLUMNS, EVENT_LIMITS, validatePageView } from '../../shared/event.js';
import { hourPartitionPath } from '../../shared/time.js';
import { decide, statementsOf, type Statement } from '../support/aws-fidelity/policy.js';
import { StackModel } from '../support/aws-fidelity/stack-model.js';
import { ACCOUNT, REGION, TemplateModel, type CfnTemplate } from '../support/aws-fidelity/template.js';

/**
 * Wiring that no emulator checks, read from the synthesized template: what each function's environment names,
 * which services may use which keys and topics, and whether the Glue table describes the files Firehose writes
 * and every partition an accepted event can land in.
 */

function synthesized(): { stack: PageViewsStack; template: CfnTemplate } {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new PageViewsStack(app, 'PageViews', { config: parseConfig({}) });
  return { stack, template: Template.fromStack(stack).toJSON() as CfnTemplate };
}

/**
 * Service principals that use a resource on the stack's behalf, and the key and resource policy they need:
 * a CloudWatch alarm publishing to an (encrypted) SNS topic (SNS developer guide, "Key management").
 */
interface ServiceUse {
  readonly principal: string;
  readonly sourceArn: string;
  readonly action: string;
  readonly resource: string;
  /** The resource's own policy (a topic policy), if it has one; SNS's default admits account principals only. */
  readonly resourcePolicy?: readonly Statement[];
  readonly key?: { readonly id: string; readonly policy: readonly Statement[] };
}

function serviceUses(model: TemplateModel): ServiceUse[] {
  const uses: ServiceUse[] = [];
  for (const alarmId of model.idsOf('AWS::CloudWatch::Alarm')) {
    const properties = model.resource(alarmId).Properties ?? {};
    const actions = ['AlarmActions', 'OKActions', 'InsufficientDataActions'].flatMap(
      (key) => (properties[key] as unknown[] | undefined) ?? [],
    );
    for (const action of actions) {
      const topicId = TemplateModel.target(action);
      if (!topicId || model.resource(topicId).Type !== 'AWS::SNS::Topic') continue;
      const topic = model.resource(topicId).Properties ?? {};
      const policyId = model
        .idsOf('AWS::SNS::TopicPolicy')
        .find((id) =>
          ((model.resource(id).Properties!.Topics as unknown[]) ?? []).some(
            (t) => TemplateModel.target(t) === topicId,
          ),
        );
      const keyId = topic.KmsMasterKeyId ? TemplateModel.target(topic.KmsMasterKeyId) : undefined;
      uses.push({
        principal: 'cloudwatch.amazonaws.com',
        sourceArn: model.getAtt(alarmId, 'Arn'),
        action: 'sns:Publish',
        resource: model.ref(topicId),
        ...(policyId
          ? {
              resourcePolicy: statementsOf(
                model.resource(policyId).Properties!.PolicyDocument,
                policyId,
                model,
              ),
            }
          : {}),
        ...(keyId
          ? {
              key: {
                id: keyId,
                policy: statementsOf(model.resource(keyId).Properties!.KeyPolicy, keyId, model),
              },
            }
          : {}),
      });
    }
  }
  return uses;
}

/** What the service principal may not do: publishing, and using the key it needs for that. */
function refusedServiceUses(model: TemplateModel): string[] {
  const refused: string[] = [];
  for (const use of serviceUses(model)) {
    const context = {
      'aws:SourceArn': use.sourceArn,
      'aws:SourceAccount': ACCOUNT,
      'aws:SecureTransport': 'true',
    };
    if (
      use.resourcePolicy &&
      !decide({ action: use.action, resource: use.resource, context }, use.resourcePolicy, use.principal)
        .allowed
    ) {
      refused.push(`${use.principal} may not ${use.action} on ${use.resource} (topic policy)`);
    }
    if (use.key) {
      const keyArn = `arn:aws:kms:${REGION}:${ACCOUNT}:key/${use.key.id}`;
      for (const action of ['kms:GenerateDataKey', 'kms:Decrypt']) {
        if (!decide({ action, resource: keyArn, context }, use.key.policy, use.principal).allowed) {
          refused.push(`${use.principal} may not ${action} with key ${use.key.id} (key policy)`);
        }
      }
    }
  }
  return [...new Set(refused)];
}

describe('wiring the emulators cannot check', () => {
  let stack: PageViewsStack;
  let template: CfnTemplate;
  let model: StackModel;
  beforeAll(() => {
    ({ stack, template } = synthesized());
    model = new StackModel(template);
  });

  it("parses each function's environment with that function's own config loader, naming the stack's resources", () => {
    const t = model.model;
    const ref = (type: string) => t.idsOf(type).map((id) => t.ref(id));
    const withConfig = FUNCTIONS.filter((fn) => model.functions[fn].config);
    // Every function of the data path reads the resource config; the origin secret's rotation reads its own.
    expect(FUNCTIONS.filter((fn) => !withConfig.includes(fn))).toEqual(['origin-secret']);
    for (const fn of withConfig) {
      const { names, settings } = model.configOf(fn);
      expect(ref('AWS::Kinesis::Stream')).toContain(names.stream);
      expect(ref('AWS::DynamoDB::GlobalTable').sort()).toEqual(Object.values(names.tables).sort());
      expect(ref('AWS::S3::Bucket')).toContain(names.bucket);
      expect(ref('AWS::Glue::Database')).toContain(names.glueDatabase);
      expect(ref('AWS::Glue::Table')).toContain(names.glueTable);
      expect(ref('AWS::Athena::WorkGroup')).toContain(names.athenaWorkgroup);
      expect(settings).toEqual(stack.runtimeConfig.settings);
    }
    // The collector's two secrets are the stack's two; the rotation rotates the one CloudFront sends and rewrites
    // the header of the stack's one distribution.
    const { collect, 'origin-secret': rotation } = model.functions;
    expect(ref('AWS::SecretsManager::Secret').sort()).toEqual(
      [collect.collector!.visitorKeySecretArn, collect.collector!.originSecretArn].sort(),
    );
    expect(collect.collector!.visitorKeySecretArn).not.toBe(collect.collector!.originSecretArn);
    expect(rotation.secrets.originSecret).toBe(collect.collector!.originSecretArn);
    expect(ref('AWS::CloudFront::Distribution')).toEqual([rotation.distributionId]);
  });

  it("parses the collector's sites and keep-lists back from its environment as configured", () => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const configured = new PageViewsStack(app, 'PageViews', {
      config: parseConfig({
        collectorSites: 'shop.example,*.blog.example',
        collectorKeepParams: JSON.stringify({ 'shop.example': ['id', 'page'], '*.blog.example': ['p'] }),
      }),
    });
    const { collector } = new StackModel(Template.fromStack(configured).toJSON() as CfnTemplate).functions
      .collect;
    expect(collector!.sites.entries).toEqual(['shop.example', '*.blog.example']);
    expect([...collector!.sites.keepFor('shop.example')]).toEqual(['id', 'page']);
    expect([...collector!.sites.keepFor('en.blog.example')]).toEqual(['p']);
    expect([...collector!.sites.keepFor('other.example')]).toEqual([]);
  });

  it('lets every service principal that publishes to a topic use the topic and its key', () => {
    expect(serviceUses(model.model).length).toBeGreaterThan(0);
    expect(refusedServiceUses(model.model)).toEqual([]);
  });

  it('names what is missing when a key policy admits only the account', () => {
    const rootOnly = structuredClone(template);
    for (const resource of Object.values(rootOnly.Resources)) {
      if (resource.Type !== 'AWS::KMS::Key') continue;
      const policy = resource.Properties!.KeyPolicy as { Statement: { Principal?: { Service?: unknown } }[] };
      policy.Statement = policy.Statement.filter((s) => !s.Principal?.Service);
    }
    expect(refusedServiceUses(new TemplateModel(rootOnly))).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^cloudwatch\.amazonaws\.com may not kms:GenerateDataKey/),
      ]),
    );
  });

  it('declares one list of columns in Glue, in the event model and in the Parquet the local Firehose writes', async () => {
    const { names } = model.configOf('batch');
    const glue = model.glueTable(names.glueDatabase, names.glueTable).input as {
      StorageDescriptor: { Columns: { Name: string; Type: string }[] };
    };
    const glueColumns = glue.StorageDescriptor.Columns.map((c) => `${c.Name} ${c.Type}`);
    const modelColumns = COLUMNS.map((c) => `${c.name} ${c.type}`);

    const dir = mkdtempSync(join(tmpdir(), 'parquet-columns-'));
    try {
      const [event] = asRecords([
        {
          created: Date.UTC(2026, 0, 1),
          url: 'https://example.com/',
          status: 200,
          country: 'US',
          browser: 'FF',
          userId: 'u1',
          site: DEFAULT_SETTINGS.defaultSite,
        },
      ]);
      const file = join(dir, 'part.parquet');
      writeFileSync(file, await parquetBytes([event!]));
      const connection = await duckdbConnection();
      const described = await connection.runAndReadAll(
        `DESCRIBE SELECT * FROM read_parquet(${sqlString(file)})`,
      );
      connection.closeSync();
      const glueType: Record<string, string> = { BIGINT: 'bigint', INTEGER: 'int', VARCHAR: 'string' };
      const parquetColumns = described
        .getRowObjects()
        .map(
          (row) =>
            `${String(row.column_name)} ${glueType[String(row.column_type)] ?? String(row.column_type)}`,
        );
      expect(glueColumns).toEqual(modelColumns);
      expect(parquetColumns).toEqual(modelColumns);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('projects a partition for every event time the validator accepts, at the path Firehose writes', () => {
    const { names } = model.configOf('batch');
    const table = model.glueTable(names.glueDatabase, names.glueTable);
    const parameters = table.input.Parameters as Record<string, string>;
    expect(parameters['projection.enabled']).toBe('true');
    const [start, end] = parameters['projection.dt.range']!.split(',');
    const oldest = EVENT_LIMITS.minCreatedMs;
    expect(
      validatePageView(
        {
          created: oldest,
          url: 'https://example.com/',
          status: 200,
          country: 'US',
          browser: 'FF',
          userId: 'u',
        },
        Date.now(),
      ).ok,
    ).toBe(true);
    expect(start! <= new Date(oldest).toISOString().slice(0, 10)).toBe(true);
    // A batch run computes only hours before H, and H is never ahead of the clock: NOW covers them all.
    expect(end).toBe('NOW');
    expect([parameters['projection.hour.range'], parameters['projection.hour.digits']]).toEqual([
      '0,23',
      '2',
    ]);
    const template = parameters['storage.location.template']!;
    for (const instant of [oldest, Date.UTC(2026, 10, 25, 7)]) {
      const [dt, hour] = hourPartitionPath(instant)
        .split('/')
        .map((p) => p.split('=')[1]);
      expect(template.replace('${dt}', dt!).replace('${hour}', hour!)).toBe(
        `s3://${table.location}${hourPartitionPath(instant)}/`,
      );
    }
  });

  it("gives the batch function's Athena waits the reserve the run needs after them", () => {
    const timeout = (model.model.resource(model.functionId('batch')).Properties!.Timeout as number) * 1000;
    expect(timeout).toBeGreaterThan(2 * QUERY_RESERVE_MS);
  });
});
