import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import {
  HttpApi,
  HttpStage,
  LogGroupLogDestination,
  type IHttpRouteAuthorizer,
} from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpIamAuthorizer, HttpJwtAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type { TableV2 } from 'aws-cdk-lib/aws-dynamodb';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import { PREFIXES } from '../shared/resources.js';
import type { AuthMode } from './config.js';
import { pageViewsFunction } from './function.js';

export interface ServingLayerProps {
  readonly speedTable: TableV2;
  /** The data bucket: the API reads the view store's objects under batch-views/. */
  readonly bucket: IBucket;
  readonly viewsTable: TableV2;
  readonly stateTable: TableV2;
  readonly environment: Record<string, string>;
  /** @default 'iam' */
  readonly authMode?: AuthMode;
  readonly jwtIssuer?: string;
  readonly jwtAudience?: readonly string[];
  readonly rateLimit: number;
  readonly burstLimit: number;
}

/** HTTP API (payload v2) → serving Lambda, authorized by IAM unless configured otherwise, throttled and logged. */
export class ServingLayer extends Construct {
  readonly function: NodejsFunction;
  readonly api: HttpApi;
  readonly stage: HttpStage;
  readonly url: string;

  constructor(scope: Construct, id: string, props: ServingLayerProps) {
    super(scope, id);
    this.function = pageViewsFunction(this, 'Function', {
      name: 'api',
      environment: props.environment,
      memorySize: 1024,
      timeout: Duration.seconds(29),
    });
    // What its reads are (the call ledger checks them, test/ledger/): Queries of speed counters, totals and
    // manifests; the published horizon by key.
    props.speedTable.grant(this.function, 'dynamodb:Query');
    props.viewsTable.grant(this.function, 'dynamodb:Query');
    props.stateTable.grant(this.function, 'dynamodb:GetItem');
    // Only GetObject: the view store's objects are named by their manifests, never listed.
    this.function.addToRolePolicy(
      new PolicyStatement({
        actions: ['s3:GetObject'],
        resources: [props.bucket.arnForObjects(`${PREFIXES.batchViews}*`)],
      }),
    );

    const authorizer = this.authorizer(props);
    this.api = new HttpApi(this, 'Api', {
      description: 'Page-view analytics query API',
      createDefaultStage: false,
      defaultIntegration: new HttpLambdaIntegration('Integration', this.function),
      ...(authorizer ? { defaultAuthorizer: authorizer } : {}),
    });
    const accessLogs = new LogGroup(this, 'AccessLogs', {
      retention: RetentionDays.THREE_MONTHS,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.stage = new HttpStage(this, 'Stage', {
      httpApi: this.api,
      stageName: '$default',
      autoDeploy: true,
      throttle: { rateLimit: props.rateLimit, burstLimit: props.burstLimit },
      accessLogSettings: { destination: new LogGroupLogDestination(accessLogs) },
    });
    this.url = this.stage.url;
  }

  private authorizer(props: ServingLayerProps): IHttpRouteAuthorizer | undefined {
    switch (props.authMode ?? 'iam') {
      case 'iam':
        return new HttpIamAuthorizer();
      case 'jwt':
        if (!props.jwtIssuer || !props.jwtAudience?.length) {
          throw new Error('ServingLayer: authMode jwt needs jwtIssuer and jwtAudience');
        }
        return new HttpJwtAuthorizer('Jwt', props.jwtIssuer, { jwtAudience: [...props.jwtAudience] });
      case 'none':
        return undefined;
    }
  }
}
