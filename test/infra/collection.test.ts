import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseConfig, type ContextKey } from '../../infra/config.js';
import { addPageViewsStacks, PageViewsStack } from '../../infra/stack.js';
import { buildTracker } from '../../shared/collection/tracker.js';
import { trackerAsset } from '../../shared/collection/tracker-asset.js';

/** The policy statements of a role's default policy, by the logical id prefix of the policy. */
function statementsOf(template: Template, policyIdPrefix: string) {
  const policies = template.findResources('AWS::IAM::Policy');
  const policy = Object.entries(policies).find(([id]) => id.startsWith(policyIdPrefix))![1];
  return policy.Properties.PolicyDocument.Statement as { Action: string | string[]; Resource: unknown }[];
}
const actionsOf = (template: Template, policyIdPrefix: string) =>
  statementsOf(template, policyIdPrefix)
    .flatMap((s) => [s.Action].flat())
    .sort();

function synth(context: Partial<Record<ContextKey, unknown>> = {}) {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new PageViewsStack(app, 'PageViews', { config: parseConfig(context) });
  return { stack, template: Template.fromStack(stack) };
}

const violations = (stack: PageViewsStack | ReturnType<typeof addPageViewsStacks>['edge']) =>
  new AwsSolutionsChecks().validateScope(stack!).violations.map((v) => v.ruleName);

describe('public collection on AWS', () => {
  let stack: PageViewsStack;
  let template: Template;
  beforeAll(() => {
    ({ stack, template } = synth({
      collectorSites: 'example.com,*.example.org',
      collectorKeepParams: '{"example.com":["id","page"]}',
    }));
  });

  it('puts nothing between CloudFront and the collector: its function URL is the origin, no API Gateway', () => {
    template.hasResourceProperties('AWS::Lambda::Url', { AuthType: 'NONE' });
    // The one HTTP API left is the query API, with IAM authorization.
    expect(Object.keys(template.findResources('AWS::ApiGatewayV2::Api'))).toHaveLength(1);
    template.hasResourceProperties('AWS::CloudFront::Distribution', {
      DistributionConfig: Match.objectLike({
        Origins: [
          Match.objectLike({
            DomainName: {
              'Fn::Select': [
                2,
                {
                  'Fn::Split': [
                    '/',
                    {
                      'Fn::GetAtt': [Match.stringLikeRegexp('CollectionFunctionFunctionUrl'), 'FunctionUrl'],
                    },
                  ],
                },
              ],
            },
            CustomOriginConfig: Match.objectLike({ OriginProtocolPolicy: 'https-only' }),
          }),
        ],
      }),
    });
  });

  it('protects the origin: CloudFront adds the origin secret from Secrets Manager, which is rotated', () => {
    template.hasResourceProperties('AWS::CloudFront::Distribution', {
      DistributionConfig: Match.objectLike({
        Origins: [
          Match.objectLike({
            OriginCustomHeaders: [
              {
                HeaderName: 'x-origin-verify',
                HeaderValue: {
                  'Fn::Join': [
                    '',
                    [
                      '{{resolve:secretsmanager:',
                      { Ref: Match.stringLikeRegexp('CollectionOriginSecret') },
                      ':SecretString:::}}',
                    ],
                  ],
                },
              },
            ],
          }),
        ],
      }),
    });
    template.hasResourceProperties('AWS::SecretsManager::RotationSchedule', {
      SecretId: { Ref: Match.stringLikeRegexp('CollectionOriginSecret') },
      RotationLambdaARN: { 'Fn::GetAtt': [Match.stringLikeRegexp('CollectionOriginSecretRotation'), 'Arn'] },
      RotationRules: { ScheduleExpression: 'rate(30 days)' },
      RotateImmediatelyOnUpdate: false,
    });
    template.hasResourceProperties('AWS::Lambda::Permission', {
      Principal: 'secretsmanager.amazonaws.com',
      SourceArn: { Ref: Match.stringLikeRegexp('CollectionOriginSecret') },
    });
    // The rotation may rewrite this distribution's header and the secret's versions, and nothing else.
    expect(actionsOf(template, 'CollectionOriginSecretRotationServiceRole')).toEqual(
      [
        'cloudfront:GetDistributionConfig',
        'cloudfront:UpdateDistribution',
        'secretsmanager:DescribeSecret',
        'secretsmanager:GetSecretValue',
        'secretsmanager:PutSecretValue',
        'secretsmanager:UpdateSecretVersionStage',
        'xray:PutTelemetryRecords',
        'xray:PutTraceSegments',
      ].sort(),
    );
    const cloudfront = statementsOf(template, 'CollectionOriginSecretRotationServiceRole').find((s) =>
      [s.Action].flat().includes('cloudfront:UpdateDistribution'),
    )!;
    expect(JSON.stringify(cloudfront.Resource)).toMatch(/:distribution\/.*CollectionDistribution/);
  });

  it('limits each client with a WAF rate rule per IP, on by default, answering 429', () => {
    template.hasResourceProperties('AWS::WAFv2::WebACL', {
      Scope: 'CLOUDFRONT',
      DefaultAction: { Allow: {} },
      Rules: [
        Match.objectLike({
          Statement: {
            RateBasedStatement: { AggregateKeyType: 'IP', Limit: 2000, EvaluationWindowSec: 300 },
          },
          Action: { Block: { CustomResponse: Match.objectLike({ ResponseCode: 429 }) } },
        }),
      ],
    });
    template.hasResourceProperties('AWS::CloudFront::Distribution', {
      DistributionConfig: Match.objectLike({
        WebACLId: { 'Fn::GetAtt': [Match.stringLikeRegexp('CollectionWebAcl'), 'Arn'] },
      }),
    });
    const tuned = synth({ collectorIpRateLimit: 600, collectorIpRateWindowSeconds: 60 }).template;
    tuned.hasResourceProperties('AWS::WAFv2::WebACL', {
      Rules: [
        Match.objectLike({
          Statement: { RateBasedStatement: Match.objectLike({ Limit: 600, EvaluationWindowSec: 60 }) },
        }),
      ],
    });
  });

  it('routes events uncached over HTTPS only, forwarding the headers the collector reads and no cookies', () => {
    template.hasResourceProperties('AWS::CloudFront::OriginRequestPolicy', {
      OriginRequestPolicyConfig: Match.objectLike({
        HeadersConfig: {
          HeaderBehavior: 'whitelist',
          Headers: Match.arrayWith([
            'Origin',
            'Referer',
            'User-Agent',
            'CloudFront-Viewer-Country',
            'CloudFront-Viewer-Address',
          ]),
        },
        CookiesConfig: { CookieBehavior: 'none' },
        QueryStringsConfig: { QueryStringBehavior: 'none' },
      }),
    });
    const policy = template.findResources('AWS::CloudFront::OriginRequestPolicy');
    const headers = Object.values(policy)[0]!.Properties.OriginRequestPolicyConfig.HeadersConfig
      .Headers as string[];
    expect(headers.map((h) => h.toLowerCase())).not.toContain('x-origin-verify');
    const cachingDisabled = '4135ea2d-6df8-44a3-9df3-4b5a84be39ad';
    const cachingOptimized = '658327ea-f89d-4fab-a63d-7e88639e58f6';
    const headersPolicy = { Ref: Match.stringLikeRegexp('CollectionSecurityHeaders') };
    template.hasResourceProperties('AWS::CloudFront::Distribution', {
      DistributionConfig: Match.objectLike({
        DefaultCacheBehavior: Match.objectLike({
          CachePolicyId: cachingOptimized,
          ViewerProtocolPolicy: 'redirect-to-https',
          ResponseHeadersPolicyId: headersPolicy,
        }),
        CacheBehaviors: [
          Match.objectLike({
            PathPattern: '/v1/events',
            CachePolicyId: cachingDisabled,
            ViewerProtocolPolicy: 'https-only',
            AllowedMethods: Match.arrayWith(['OPTIONS', 'POST']),
            OriginRequestPolicyId: { Ref: Match.stringLikeRegexp('CollectorForwarding') },
            ResponseHeadersPolicyId: headersPolicy,
          }),
        ],
      }),
    });
  });

  it('adds HSTS and nosniff to every response through a response headers policy', () => {
    template.hasResourceProperties('AWS::CloudFront::ResponseHeadersPolicy', {
      ResponseHeadersPolicyConfig: Match.objectLike({
        SecurityHeadersConfig: {
          StrictTransportSecurity: {
            AccessControlMaxAgeSec: 63072000,
            IncludeSubdomains: true,
            Override: true,
          },
          ContentTypeOptions: { Override: true },
        },
      }),
    });
  });

  it('prints the tag of the immutable, versioned tracker URL with its SRI hash', () => {
    const asset = trackerAsset(buildTracker().script);
    const outputs = template.findOutputs('*');
    const tag = JSON.stringify(outputs.TrackerScriptTag!.Value);
    expect(tag).toContain(`${asset.path}\\" integrity=\\"${asset.integrity}\\" crossorigin=\\"anonymous\\"`);
    expect(asset.path).toMatch(/^\/pv\.[0-9a-f]{12}\.js$/);
    expect(outputs.TrackerIntegrity!.Value).toBe(asset.integrity);
  });

  it('lets the collector put records on the stream and read its two secrets, and nothing else', () => {
    expect(actionsOf(template, 'CollectionFunctionServiceRole')).toEqual(
      [
        'kinesis:PutRecords',
        'secretsmanager:GetSecretValue',
        'xray:PutTelemetryRecords',
        'xray:PutTraceSegments',
      ].sort(),
    );
    const secrets = statementsOf(template, 'CollectionFunctionServiceRole').find((s) =>
      [s.Action].flat().includes('secretsmanager:GetSecretValue'),
    )!;
    expect(secrets.Resource).toEqual([
      { Ref: expect.stringMatching(/^CollectionVisitorKey/) },
      { Ref: expect.stringMatching(/^CollectionOriginSecret/) },
    ]);
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          COLLECTOR_SITES: 'example.com,*.example.org',
          COLLECTOR_KEEP_PARAMS: '{"example.com":["id","page"]}',
          ORIGIN_SECRET_ARN: { Ref: Match.stringLikeRegexp('CollectionOriginSecret') },
        }),
      },
    });
  });

  it('keeps the visitor key in Secrets Manager, alarms on refused page views and on unverified origins', () => {
    template.hasResourceProperties('AWS::SecretsManager::Secret', {
      GenerateSecretString: Match.objectLike({ PasswordLength: 64 }),
    });
    for (const metric of ['StreamWriteFailures', 'OriginUnverified'])
      template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: metric });
    expect(violations(stack)).toEqual([]);
  });

  it("uses an operator's web ACL instead of its own when one is configured", () => {
    const arn = 'arn:aws:wafv2:us-east-1:123456789012:global/webacl/collector/0123';
    const { template: withAcl, stack: aclStack } = synth({ collectorWebAclArn: arn });
    withAcl.hasResourceProperties('AWS::CloudFront::Distribution', {
      DistributionConfig: Match.objectLike({ WebACLId: arn }),
    });
    withAcl.resourceCountIs('AWS::WAFv2::WebACL', 0);
    expect(violations(aclStack)).toEqual([]);
  });

  it('deploys the web ACL from a stack of its own in us-east-1 when the system lives in another region', () => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const { main, edge } = addPageViewsStacks(app, 'PageViews', parseConfig({}), {
      account: '123456789012',
      region: 'eu-west-1',
    });
    expect(edge!.region).toBe('us-east-1');
    Template.fromStack(edge!).hasResourceProperties('AWS::WAFv2::WebACL', { Scope: 'CLOUDFRONT' });
    const mainTemplate = Template.fromStack(main);
    mainTemplate.resourceCountIs('AWS::WAFv2::WebACL', 0);
    mainTemplate.hasResourceProperties('AWS::CloudFront::Distribution', {
      DistributionConfig: Match.objectLike({
        WebACLId: {
          'Fn::GetAtt': [Match.stringLikeRegexp('ExportsReader'), Match.stringLikeRegexp('CollectorWebAcl')],
        },
      }),
    });
    expect(main.dependencies).toContain(edge);
    expect([...violations(main), ...violations(edge)]).toEqual([]);
    // In us-east-1 one stack holds everything.
    const single = addPageViewsStacks(
      new App({ context: { 'aws:cdk:bundling-stacks': [] } }),
      'PageViews',
      parseConfig({}),
      {
        account: '123456789012',
        region: 'us-east-1',
      },
    );
    expect(single.edge).toBeUndefined();
  });
});
