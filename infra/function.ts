import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Duration, RemovalPolicy, type Size } from 'aws-cdk-lib';
import { Architecture, LoggingFormat, Runtime, Tracing } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat, type NodejsFunctionProps } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';

/** The repository root: Lambda entries and the SQL files are found from here. */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

export interface PageViewsFunctionProps {
  /** Folder under lambdas/, e.g. `speed`. */
  readonly name: string;
  readonly environment: Record<string, string>;
  readonly memorySize?: number;
  /** /tmp size. @default 512 MiB */
  readonly ephemeralStorageSize?: Size;
  readonly timeout?: Duration;
  readonly reservedConcurrentExecutions?: number;
  /** Identifiers replaced by constant expressions at bundle time (esbuild `define`). */
  readonly define?: Record<string, string>;
  /** Files to copy beside the bundle (e.g. SQL). */
  readonly copyFiles?: { readonly from: string; readonly pattern: string };
}

/**
 * A Lambda function from lambdas/<name>/handler.ts, bundled with the local esbuild (no Docker) as ESM for
 * nodejs22.x on arm64, with JSON logs kept for a month. The AWS SDK v3 is bundled too, so the deployed code
 * runs the SDK version the tests ran, not whatever the runtime ships.
 */
export function pageViewsFunction(
  scope: Construct,
  id: string,
  props: PageViewsFunctionProps,
): NodejsFunction {
  const logGroup = new LogGroup(scope, `${id}Logs`, {
    retention: RetentionDays.ONE_MONTH,
    removalPolicy: RemovalPolicy.DESTROY,
  });
  const copy = props.copyFiles;
  const bundling: NodejsFunctionProps['bundling'] = {
    format: OutputFormat.ESM,
    target: 'node22',
    minify: true,
    sourceMap: true,
    mainFields: ['module', 'main'],
    // Some CommonJS dependencies call require(): give the ESM bundle one.
    banner: "import { createRequire } from 'module'; const require = createRequire(import.meta.url);",
    externalModules: ['@duckdb/node-api'],
    ...(props.define ? { define: props.define } : {}),
    ...(copy
      ? {
          commandHooks: {
            beforeBundling: () => [],
            beforeInstall: () => [],
            afterBundling: (inputDir: string, outputDir: string) => [
              `cp ${join(inputDir, copy.from)}/${copy.pattern} ${outputDir}/ 2>/dev/null || true`,
            ],
          },
        }
      : {}),
  };
  return new NodejsFunction(scope, id, {
    entry: join(ROOT, 'lambdas', props.name, 'handler.ts'),
    handler: 'handler',
    projectRoot: ROOT,
    depsLockFilePath: join(ROOT, 'package-lock.json'),
    runtime: Runtime.NODEJS_22_X,
    architecture: Architecture.ARM_64,
    memorySize: props.memorySize ?? 512,
    ...(props.ephemeralStorageSize ? { ephemeralStorageSize: props.ephemeralStorageSize } : {}),
    timeout: props.timeout ?? Duration.seconds(60),
    environment: {
      NODE_OPTIONS: '--enable-source-maps',
      POWERTOOLS_METRICS_NAMESPACE: 'PageViews',
      ...props.environment,
    },
    loggingFormat: LoggingFormat.JSON,
    logGroup,
    tracing: Tracing.ACTIVE,
    ...(props.reservedConcurrentExecutions !== undefined
      ? { reservedConcurrentExecutions: props.reservedConcurrentExecutions }
      : {}),
    bundling,
  });
}
