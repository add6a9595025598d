import { parseArgs } from 'node:util';
import { runCli, UsageError } from '../tools/cli.js';
import { apiRegion, signedGet } from '../tools/signed-fetch.js';

/**
 * Calls the deployed API with a SigV4-signed request (the default IAM authorization), using the usual AWS
 * credential chain (environment, profile, SSO, instance role).
 *   npm run call-api -- --url https://abc.execute-api.eu-west-1.amazonaws.com /v1/status
 */
async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    options: { url: { type: 'string' }, region: { type: 'string' } },
    allowPositionals: true,
  });
  if (!values.url || positionals.length !== 1) {
    throw new UsageError('usage: npm run call-api -- --url <ApiUrl output> </v1/path?query>');
  }
  const target = new URL(positionals[0]!, values.url);
  const region = values.region ?? apiRegion(target);
  if (!region) throw new UsageError('could not tell the region from the URL: pass --region');
  const response = await signedGet(target, region);
  process.stderr.write(`${response.status} ${response.statusText}\n`);
  process.stdout.write((await response.text()) + '\n');
  if (!response.ok) process.exitCode = 1;
}

runCli(main);
