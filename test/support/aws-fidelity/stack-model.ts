import {
  collectorSettingsFromEnvironment,
  type CollectorSettings,
} from '../../../shared/collection/config.js';
import { distributionIdFromEnvironment } from '../../../shared/collection/rotation-config.js';
import { FUNCTIONS, type FunctionName } from '../../../shared/call-ledger.js';
import {
  configFromEnvironment,
  resourceNames,
  TABLES,
  type RuntimeConfig,
  type TableKey,
} from '../../../shared/resources.js';
import type { CallResources } from './iam-actions.js';
import { need } from './iam-actions.js';
import { statementsOf, type Requirement, type Statement } from './policy.js';
import { ACCOUNT, PARTITION, REGION, TemplateModel, type CfnTemplate } from './template.js';

/**
 * The stack's functions as the template deploys them: each one's logical id, environment (resolved), the
 * config its own loader parses from that environment, the statements of its role, the resources it may name,
 * and what AWS services do with its role on its behalf (its event source mapping, the Lambda runtime).
 */

/** Construct path of each function (infra/): the logical id is the path without slashes plus a hash. */
export const FUNCTION_PATHS: Readonly<Record<FunctionName, string>> = {
  speed: 'Speed/Function',
  ingest: 'Batch/IngestFunction',
  batch: 'Batch/BatchFunction',
  catalog: 'Batch/CatalogFunction',
  api: 'Serving/Function',
  collect: 'Collection/Function',
  'origin-secret': 'Collection/OriginSecretRotation',
};

/** The secrets of the stack, by what they are to the code. */
export type SecretRole = 'visitorKey' | 'originSecret';

const SECRET_SUFFIX: Readonly<Record<SecretRole, string>> = {
  visitorKey: 'visitor-key',
  originSecret: 'origin-secret',
};

/**
 * The name a test gives a secret it creates for a function to read (on moto, which names its own ARNs): the
 * ledger check tells by it which of the template's secrets a recorded call stands for.
 */
export function localSecretName(prefix: string, role: SecretRole): string {
  return `${prefix}-${SECRET_SUFFIX[role]}`;
}

/**
 * AWS managed policies the roles attach, by name, as documented (AWS Managed Policy reference guide,
 * "AWSLambdaBasicExecutionRole"). An attached managed policy that is not here grants nothing in these checks.
 */
export const AWS_MANAGED_POLICIES: Readonly<Record<string, unknown>> = {
  AWSLambdaBasicExecutionRole: {
    Statement: [
      {
        Effect: 'Allow',
        Action: ['logs:CreateLogGroup', 'logs:CreateLogStream', 'logs:PutLogEvents'],
        Resource: '*',
      },
    ],
  },
};

export interface DeployedFunction {
  readonly name: FunctionName;
  readonly id: string;
  readonly environment: Record<string, string>;
  /**
   * Parsed by the function's own loaders: shared/resources.ts for every function of the data path (the origin
   * secret's rotation reads none), the collector's settings, the rotation's distribution.
   */
  readonly config?: RuntimeConfig;
  readonly collector?: CollectorSettings;
  readonly distributionId?: string;
  /** The secrets the function names, by role: from its environment, or (rotation) from its rotation schedule. */
  readonly secrets: Readonly<Partial<Record<SecretRole, string>>>;
  readonly statements: readonly Statement[];
  readonly resources: CallResources;
  /** Calls AWS makes with this function's role: the event source mapping's reads, the runtime's logs. */
  readonly serviceRequirements: readonly Requirement[];
}

export class ResourceMappingError extends Error {
  override readonly name = 'ResourceMappingError';
}

/**
 * The logical table of a local physical name. Local and test names all come from `resourceNames(prefix)`, so
 * the part after the prefix says which table it is.
 */
function tableKeyOf(physical: string): TableKey {
  const sample = resourceNames('p');
  const keys = (Object.keys(TABLES) as TableKey[]).filter((key) =>
    physical.endsWith(sample.tables[key].slice(1)),
  );
  if (keys.length !== 1) throw new ResourceMappingError(`${physical} is not a table of resourceNames()`);
  return keys[0]!;
}

/** The role of a local secret, from its name or ARN (`localSecretName`; moto's ARNs end in `-` and 6 characters). */
function secretRoleOf(physical: string): SecretRole {
  const name = physical
    .replace(/^arn:[^:]+:secretsmanager:[^:]*:[^:]*:secret:/, '')
    .replace(/-[A-Za-z0-9]{6}$/, '');
  const roles = (Object.keys(SECRET_SUFFIX) as SecretRole[]).filter((role) =>
    name.endsWith(`-${SECRET_SUFFIX[role]}`),
  );
  if (roles.length !== 1) throw new ResourceMappingError(`${physical} is not a secret of localSecretName()`);
  return roles[0]!;
}

export class StackModel {
  readonly model: TemplateModel;
  readonly functions: Readonly<Record<FunctionName, DeployedFunction>>;

  constructor(template: CfnTemplate) {
    this.model = new TemplateModel(template);
    this.functions = Object.fromEntries(FUNCTIONS.map((name) => [name, this.deployed(name)])) as Record<
      FunctionName,
      DeployedFunction
    >;
  }

  /** The shared resource config of a function of the data path. */
  configOf(name: FunctionName): RuntimeConfig {
    const { config } = this.functions[name];
    if (!config) throw new ResourceMappingError(`the ${name} function reads no resource config`);
    return config;
  }

  functionId(name: FunctionName): string {
    const pattern = new RegExp(`^${FUNCTION_PATHS[name].replace(/\//g, '')}[0-9A-F]{8}$`);
    const ids = this.model.idsOf('AWS::Lambda::Function').filter((id) => pattern.test(id));
    if (ids.length !== 1)
      throw new Error(`expected one function for ${name}, found ${ids.join(', ') || 'none'}`);
    return ids[0]!;
  }

  /** Every statement of a role: inline policies, attached AWS::IAM::Policy/ManagedPolicy, AWS managed policies. */
  roleStatements(roleId: string): Statement[] {
    const { model } = this;
    const role = model.resource(roleId).Properties ?? {};
    const statements: Statement[] = [];
    for (const policy of (role.Policies as { PolicyName: string; PolicyDocument: unknown }[] | undefined) ??
      []) {
      statements.push(...statementsOf(policy.PolicyDocument, `${roleId}/${policy.PolicyName}`, model));
    }
    for (const type of ['AWS::IAM::Policy', 'AWS::IAM::ManagedPolicy']) {
      for (const id of model.idsOf(type)) {
        const properties = model.resource(id).Properties ?? {};
        const roles = ((properties.Roles as unknown[] | undefined) ?? []).map((r) => TemplateModel.target(r));
        if (roles.includes(roleId)) statements.push(...statementsOf(properties.PolicyDocument, id, model));
      }
    }
    for (const managed of (role.ManagedPolicyArns as unknown[] | undefined) ?? []) {
      const name = String(model.resolve(managed)).split('/').pop()!;
      const document = AWS_MANAGED_POLICIES[name];
      if (document) statements.push(...statementsOf(document, `aws-managed:${name}`));
    }
    return statements;
  }

  /** Deny statements of the resource policies (bucket policies) that govern an ARN. */
  resourceDenies(): Statement[] {
    const { model } = this;
    return model
      .idsOf('AWS::S3::BucketPolicy')
      .flatMap((id) => statementsOf(model.resource(id).Properties!.PolicyDocument, id, model))
      .filter((s) => s.effect === 'Deny');
  }

  private deployed(name: FunctionName): DeployedFunction {
    const { model } = this;
    const id = this.functionId(name);
    const properties = model.resource(id).Properties ?? {};
    const environment = model.resolve(
      (properties.Environment as { Variables?: unknown } | undefined)?.Variables ?? {},
    ) as Record<string, string>;
    // Each function's loaders, as its handler calls them at cold start.
    const config = name === 'origin-secret' ? undefined : configFromEnvironment(environment);
    const collector = name === 'collect' ? collectorSettingsFromEnvironment(environment) : undefined;
    const distributionId = name === 'origin-secret' ? distributionIdFromEnvironment(environment) : undefined;
    const secrets: Partial<Record<SecretRole, string>> = collector
      ? { visitorKey: collector.visitorKeySecretArn, originSecret: collector.originSecretArn }
      : name === 'origin-secret'
        ? { originSecret: this.rotatedSecret(id) }
        : {};
    const roleId = TemplateModel.target(properties.Role)!;
    const statements = [...this.roleStatements(roleId), ...this.resourceDenies()];
    return {
      name,
      id,
      environment,
      ...(config ? { config } : {}),
      ...(collector ? { collector } : {}),
      ...(distributionId ? { distributionId } : {}),
      secrets,
      statements,
      resources: this.resourcesOf(config, secrets, distributionId),
      serviceRequirements: this.serviceRequirements(id),
    };
  }

  /** The secret whose rotation schedule invokes a function (Secrets Manager passes it as the event's SecretId). */
  private rotatedSecret(functionId: string): string {
    const { model } = this;
    const secrets = model
      .idsOf('AWS::SecretsManager::RotationSchedule')
      .map((id) => model.resource(id).Properties ?? {})
      .filter((p) => TemplateModel.target(p.RotationLambdaARN) === functionId)
      .map((p) => String(model.resolve(p.SecretId)));
    if (secrets.length !== 1)
      throw new ResourceMappingError(
        `expected one rotation schedule for ${functionId}, found ${secrets.length}`,
      );
    return secrets[0]!;
  }

  private resourcesOf(
    config: RuntimeConfig | undefined,
    secrets: Partial<Record<SecretRole, string>>,
    distributionId: string | undefined,
  ): CallResources {
    const regional = (service: string, resource: string) =>
      `arn:${PARTITION}:${service}:${REGION}:${ACCOUNT}:${resource}`;
    const noConfig = (): never => {
      throw new ResourceMappingError('this function reads no resource config');
    };
    const secret = (physical: unknown) => {
      const named = Object.values(secrets).find((arn) => arn === physical);
      if (named) return named;
      const arn = secrets[secretRoleOf(String(physical))];
      if (!arn)
        throw new ResourceMappingError(`this function names no ${secretRoleOf(String(physical))} secret`);
      return arn;
    };
    const distribution = () => {
      if (!distributionId) throw new ResourceMappingError('this function names no distribution');
      // CloudFront is global: its ARNs have no region (Service Authorization Reference, CloudFront resource types).
      return `arn:${PARTITION}:cloudfront::${ACCOUNT}:distribution/${distributionId}`;
    };
    if (!config) {
      return {
        table: noConfig,
        bucket: noConfig,
        object: noConfig,
        stream: noConfig,
        workgroup: noConfig,
        athenaResultObject: noConfig,
        athenaQuery: noConfig,
        secret,
        distribution,
      };
    }
    const { names } = config;
    const bucketArn = `arn:${PARTITION}:s3:::${names.bucket}`;
    const workgroup = this.workgroup(names.athenaWorkgroup);
    const glueTable = this.glueTable(names.glueDatabase, names.glueTable);
    return {
      // A deployed bundle run against the emulators names the template's own tables; local code names its own.
      table: (physical) => {
        const key =
          (Object.keys(names.tables) as TableKey[]).find((k) => names.tables[k] === physical) ??
          tableKeyOf(String(physical));
        return regional('dynamodb', `table/${names.tables[key]}`);
      },
      // Each function names one bucket, one stream and one workgroup: the kind says which.
      bucket: () => bucketArn,
      object: (_bucket, key) => `${bucketArn}/${String(key)}`,
      stream: () => regional('kinesis', `stream/${names.stream}`),
      secret,
      distribution,
      workgroup: () => regional('athena', `workgroup/${names.athenaWorkgroup}`),
      athenaResultObject: () => `${workgroup.resultsArn}query-id.csv`,
      athenaQuery: () => {
        const catalog = regional('glue', 'catalog');
        const database = regional('glue', `database/${names.glueDatabase}`);
        const table = regional('glue', `table/${names.glueDatabase}/${names.glueTable}`);
        const why = 'Athena, with the caller’s permissions';
        const object = (prefix: string, key: string) => `arn:${PARTITION}:s3:::${prefix}${key}`;
        return [
          need('glue:GetDatabase', catalog, { why }),
          need('glue:GetDatabase', database, { why }),
          ...[catalog, database, table].map((resource) => need('glue:GetTable', resource, { why })),
          ...(glueTable.projection
            ? []
            : [catalog, database, table].map((resource) => need('glue:GetPartitions', resource, { why }))),
          need('s3:GetBucketLocation', bucketArn, { why }),
          need('s3:ListBucket', bucketArn, { why, context: { 's3:prefix': glueTable.prefix } }),
          need('s3:GetObject', object(glueTable.location, 'dt=2000-01-01/hour=00/object.parquet'), { why }),
          need('s3:ListBucket', bucketArn, { why, context: { 's3:prefix': workgroup.prefix } }),
          need('s3:ListBucketMultipartUploads', bucketArn, { why }),
          ...['s3:PutObject', 's3:GetObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts'].map(
            (action) => need(action, `${workgroup.resultsArn}query-id.csv`, { why }),
          ),
        ];
      },
    };
  }

  /** The workgroup's enforced result location, as `arn:aws:s3:::bucket/prefix/`. */
  private workgroup(name: string): { resultsArn: string; prefix: string } {
    const id = this.model.idsOf('AWS::Athena::WorkGroup').find((w) => this.model.ref(w) === name);
    if (!id) throw new ResourceMappingError(`no Athena workgroup ${name} in the template`);
    const location = String(
      this.model.resolve(
        (
          this.model.resource(id).Properties as {
            WorkGroupConfiguration: { ResultConfiguration: { OutputLocation: unknown } };
          }
        ).WorkGroupConfiguration.ResultConfiguration.OutputLocation,
      ),
    );
    const [, bucketAndPrefix] = /^s3:\/\/(.*)$/.exec(location)!;
    return {
      resultsArn: `arn:${PARTITION}:s3:::${bucketAndPrefix}`,
      prefix: bucketAndPrefix!.split('/').slice(1).join('/'),
    };
  }

  /** The Glue table: its S3 location (`bucket/prefix/`) and whether partition projection is on. */
  glueTable(
    database: string,
    table: string,
  ): { location: string; prefix: string; projection: boolean; input: Record<string, unknown> } {
    const id = this.model.idsOf('AWS::Glue::Table').find((t) => {
      const p = this.model.resolve(this.model.resource(t).Properties) as {
        DatabaseName: string;
        TableInput: { Name: string };
      };
      return p.DatabaseName === database && p.TableInput.Name === table;
    });
    if (!id) throw new ResourceMappingError(`no Glue table ${database}.${table} in the template`);
    const input = (
      this.model.resolve(this.model.resource(id).Properties) as { TableInput: Record<string, unknown> }
    ).TableInput;
    const location = String((input.StorageDescriptor as { Location: string }).Location).replace(
      /^s3:\/\//,
      '',
    );
    return {
      location,
      prefix: location.split('/').slice(1).join('/'),
      projection: (input.Parameters as Record<string, string>)['projection.enabled'] === 'true',
      input,
    };
  }

  /**
   * What AWS does with a function's role (Lambda developer guide, "Process Amazon Kinesis Data Streams records
   * with Lambda": the mapping needs DescribeStream, DescribeStreamSummary, GetRecords, GetShardIterator,
   * ListShards and SubscribeToShard; "Retain discarded batch records": an S3 on-failure destination needs
   * s3:PutObject and s3:ListBucket; the runtime writes the function's logs and, with active tracing, X-Ray
   * segments).
   */
  private serviceRequirements(functionId: string): Requirement[] {
    const { model } = this;
    const properties = model.resource(functionId).Properties ?? {};
    const requirements: Requirement[] = [];
    const why = (what: string) => ({ why: what, context: { 'aws:SecureTransport': 'true' } });
    for (const mappingId of model.idsOf('AWS::Lambda::EventSourceMapping')) {
      const mapping = model.resource(mappingId).Properties ?? {};
      if (TemplateModel.target(mapping.FunctionName) !== functionId) continue;
      const source = String(model.resolve(mapping.EventSourceArn));
      if (source.includes(':kinesis:')) {
        for (const action of [
          'kinesis:DescribeStream',
          'kinesis:DescribeStreamSummary',
          'kinesis:GetRecords',
          'kinesis:GetShardIterator',
          'kinesis:ListShards',
        ]) {
          requirements.push({
            action,
            resource: source,
            ...why('the event source mapping reads the stream'),
          });
        }
      }
      const destination = (mapping.DestinationConfig as { OnFailure?: { Destination?: unknown } } | undefined)
        ?.OnFailure?.Destination;
      if (destination) {
        const bucket = String(model.resolve(destination));
        requirements.push(
          {
            action: 's3:PutObject',
            resource: `${bucket}/speed-on-failure.json`,
            ...why('the mapping keeps batches it gave up on'),
          },
          { action: 's3:ListBucket', resource: bucket, ...why('the mapping keeps batches it gave up on') },
        );
      }
    }
    const logGroup = (properties.LoggingConfig as { LogGroup?: unknown } | undefined)?.LogGroup;
    const group = logGroup ? String(model.resolve(logGroup)) : `/aws/lambda/${model.ref(functionId)}`;
    const stream = `arn:${PARTITION}:logs:${REGION}:${ACCOUNT}:log-group:${group}:log-stream:2026/01/01/[$LATEST]id`;
    requirements.push(
      {
        action: 'logs:CreateLogStream',
        resource: stream,
        ...why('the Lambda runtime writes the function’s logs'),
      },
      {
        action: 'logs:PutLogEvents',
        resource: stream,
        ...why('the Lambda runtime writes the function’s logs'),
      },
    );
    if ((properties.TracingConfig as { Mode?: string } | undefined)?.Mode === 'Active') {
      for (const action of ['xray:PutTraceSegments', 'xray:PutTelemetryRecords']) {
        requirements.push({ action, resource: '*', ...why('active tracing sends X-Ray segments') });
      }
    }
    return requirements;
  }
}
