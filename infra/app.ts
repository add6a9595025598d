import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { configFromContext, ConfigError } from './config.js';
import { PageViewsStack } from './stack.js';

/** `npx cdk synth|deploy`: one stack, configured from CDK context (see README "Deploying to AWS"). */
const app = new App();
try {
  const config = configFromContext(app.node);
  new PageViewsStack(app, app.node.tryGetContext('stackName') ?? 'PageViews', {
    config,
    env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
    description: 'Serverless Lambda Architecture for page-view analytics',
  });
  // cdk-nag's AwsSolutions pack: synth fails on any finding that is not acknowledged with a reason.
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
} catch (error) {
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  }
  throw error;
}
