import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { configFromContext, DeployConfigError } from './config.js';
import { addPageViewsStacks } from './stack.js';

/**
 * `npx cdk synth|deploy`: the system's stack (and, outside us-east-1, the collector's web ACL in a stack there),
 * configured from CDK context (see README "Deploying to AWS").
 */
const app = new App();
try {
  const config = configFromContext(app.node);
  addPageViewsStacks(app, app.node.tryGetContext('stackName') ?? 'PageViews', config, {
    ...(process.env.CDK_DEFAULT_ACCOUNT ? { account: process.env.CDK_DEFAULT_ACCOUNT } : {}),
    ...(process.env.CDK_DEFAULT_REGION ? { region: process.env.CDK_DEFAULT_REGION } : {}),
  });
  // cdk-nag's AwsSolutions pack: synth fails on any finding that is not acknowledged with a reason.
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
} catch (error) {
  if (error instanceof DeployConfigError) {
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  }
  throw error;
}
