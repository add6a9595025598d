/**
 * A synthesized CloudFormation template read the way AWS would deploy it: intrinsic functions (Ref, Fn::GetAtt,
 * Fn::Join, Fn::Sub, Fn::Select, Fn::Split) resolved to the names and ARNs the resources would get, in a fixed
 * account and region. Physical names CloudFormation generates are stood in for by the logical id, the same in
 * a Ref and in every ARN built from it, so a policy's resource and a call's resource compare as strings.
 * Anything this cannot resolve (conditions, imports) throws: a check built on it refuses rather than guesses.
 */

export const ACCOUNT = '123456789012';
export const REGION = 'us-east-1';
export const PARTITION = 'aws';

export interface CfnResource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
  readonly Metadata?: Record<string, unknown>;
}

export interface CfnTemplate {
  readonly Resources: Record<string, CfnResource>;
}

export class UnresolvableError extends Error {
  override readonly name = 'UnresolvableError';
}

const PSEUDO: Record<string, string> = {
  'AWS::Partition': PARTITION,
  'AWS::Region': REGION,
  'AWS::AccountId': ACCOUNT,
  'AWS::URLSuffix': 'amazonaws.com',
  'AWS::StackName': 'PageViews',
};

const arn = (service: string, resource: string, region = REGION, account = ACCOUNT) =>
  `arn:${PARTITION}:${service}:${region}:${account}:${resource}`;

export class TemplateModel {
  constructor(readonly template: CfnTemplate) {}

  resource(id: string): CfnResource {
    const resource = this.template.Resources[id];
    if (!resource) throw new UnresolvableError(`no resource ${id} in the template`);
    return resource;
  }

  /** Logical ids of the resources of a type. */
  idsOf(type: string): string[] {
    return Object.entries(this.template.Resources)
      .filter(([, r]) => r.Type === type)
      .map(([id]) => id);
  }

  private property(id: string, ...path: string[]): string | undefined {
    let value: unknown = this.resource(id).Properties;
    for (const key of path) value = (value as Record<string, unknown> | undefined)?.[key];
    return value === undefined ? undefined : String(this.resolve(value));
  }

  /** What `Ref` returns for a resource, per its type (the CloudFormation resource reference's "Ref" column). */
  ref(id: string): string {
    if (PSEUDO[id]) return PSEUDO[id];
    const { Type } = this.resource(id);
    switch (Type) {
      case 'AWS::DynamoDB::GlobalTable':
      case 'AWS::DynamoDB::Table':
        return this.property(id, 'TableName') ?? id;
      case 'AWS::S3::Bucket':
        return this.property(id, 'BucketName') ?? id.toLowerCase();
      case 'AWS::Kinesis::Stream':
        return this.property(id, 'Name') ?? id;
      case 'AWS::SecretsManager::Secret':
        return arn('secretsmanager', `secret:${this.property(id, 'Name') ?? id}-AbCdEf`);
      case 'AWS::SNS::Topic':
        return arn('sns', this.property(id, 'TopicName') ?? id);
      case 'AWS::KMS::Key':
        return id;
      case 'AWS::Lambda::Function':
        return this.property(id, 'FunctionName') ?? id;
      case 'AWS::IAM::Role':
        return this.property(id, 'RoleName') ?? id;
      case 'AWS::Logs::LogGroup':
        return this.property(id, 'LogGroupName') ?? id;
      case 'AWS::Glue::Database':
        return this.property(id, 'DatabaseInput', 'Name') ?? id;
      case 'AWS::Glue::Table':
        return this.property(id, 'TableInput', 'Name') ?? id;
      case 'AWS::Athena::WorkGroup':
        return this.property(id, 'Name') ?? id;
      case 'AWS::KinesisFirehose::DeliveryStream':
        return this.property(id, 'DeliveryStreamName') ?? id;
      case 'AWS::CloudWatch::Alarm':
        return this.property(id, 'AlarmName') ?? id;
      case 'AWS::Events::Rule':
        return this.property(id, 'Name') ?? id;
      default:
        return id;
    }
  }

  /** What `Fn::GetAtt` returns; unknown attributes resolve to a placeholder no real ARN equals. */
  getAtt(id: string, attribute: string): string {
    const { Type } = this.resource(id);
    const name = this.ref(id);
    const known: Record<string, Record<string, () => string>> = {
      'AWS::DynamoDB::GlobalTable': { Arn: () => arn('dynamodb', `table/${name}`) },
      'AWS::DynamoDB::Table': { Arn: () => arn('dynamodb', `table/${name}`) },
      'AWS::S3::Bucket': {
        Arn: () => `arn:${PARTITION}:s3:::${name}`,
        DomainName: () => `${name}.s3.amazonaws.com`,
      },
      'AWS::Kinesis::Stream': { Arn: () => arn('kinesis', `stream/${name}`) },
      'AWS::KMS::Key': { Arn: () => arn('kms', `key/${name}`), KeyId: () => name },
      'AWS::SNS::Topic': { TopicArn: () => name, TopicName: () => name.split(':').pop()! },
      'AWS::Lambda::Function': { Arn: () => arn('lambda', `function:${name}`) },
      'AWS::IAM::Role': { Arn: () => `arn:${PARTITION}:iam::${ACCOUNT}:role/${name}` },
      'AWS::Logs::LogGroup': { Arn: () => arn('logs', `log-group:${name}:*`) },
      'AWS::KinesisFirehose::DeliveryStream': { Arn: () => arn('firehose', `deliverystream/${name}`) },
      'AWS::CloudWatch::Alarm': { Arn: () => arn('cloudwatch', `alarm:${name}`) },
      'AWS::Events::Rule': { Arn: () => arn('events', `rule/${name}`) },
      'AWS::ApiGatewayV2::Api': { ApiEndpoint: () => `https://${name}.execute-api.${REGION}.amazonaws.com` },
      'AWS::CloudFront::Distribution': { DomainName: () => `${name}.cloudfront.net` },
    };
    const make = known[Type]?.[attribute];
    return make ? make() : `{{${id}.${attribute}}}`;
  }

  /** Resolves every intrinsic function inside a value. */
  resolve(value: unknown): unknown {
    if (Array.isArray(value)) return value.map((v) => this.resolve(v));
    if (value === null || typeof value !== 'object') return value;
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length === 1) {
      const [[key, argument]] = entries as [[string, unknown]];
      switch (key) {
        case 'Ref':
          return this.ref(String(argument));
        case 'Fn::GetAtt': {
          const [id, attribute] = Array.isArray(argument)
            ? (argument as string[])
            : String(argument).split(/\.(.*)/s);
          return this.getAtt(id!, attribute!);
        }
        case 'Fn::Join': {
          const [delimiter, parts] = argument as [string, unknown[]];
          return (this.resolve(parts) as unknown[]).map(String).join(delimiter);
        }
        case 'Fn::Select': {
          const [index, list] = argument as [number | string, unknown];
          return (this.resolve(list) as unknown[])[Number(this.resolve(index))];
        }
        case 'Fn::Split': {
          const [delimiter, text] = argument as [string, unknown];
          return String(this.resolve(text)).split(delimiter);
        }
        case 'Fn::Sub': {
          const [text, variables] = Array.isArray(argument)
            ? (argument as [string, Record<string, unknown>])
            : [String(argument), {}];
          return text.replace(/\$\{([^}!][^}]*)\}/g, (_, name: string) => {
            if (name in variables) return String(this.resolve(variables[name]));
            const [id, attribute] = name.split(/\.(.*)/s);
            return attribute ? this.getAtt(id!, attribute) : this.ref(id!);
          });
        }
        default:
          if (key.startsWith('Fn::') || key === 'Condition') {
            throw new UnresolvableError(`${key} is not resolved here: refusing to guess its value`);
          }
      }
    }
    return Object.fromEntries(entries.map(([k, v]) => [k, this.resolve(v)]));
  }

  /** Logical id that a `Ref` / `Fn::GetAtt` value points at, if it is one. */
  static target(value: unknown): string | undefined {
    if (!value || typeof value !== 'object') return undefined;
    const v = value as Record<string, unknown>;
    if (typeof v.Ref === 'string') return v.Ref;
    const att = v['Fn::GetAtt'];
    if (Array.isArray(att)) return String(att[0]);
    if (typeof att === 'string') return att.split('.')[0];
    return undefined;
  }
}
