import { parseArgs } from 'node:util';
import { Sha256 } from '@aws-crypto/sha256-js';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { runCli, UsageError } from './cli.js';

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
  const region = values.region ?? /execute-api\.([a-z0-9-]+)\.amazonaws\.com/.exec(target.hostname)?.[1];
  if (!region) throw new UsageError('could not tell the region from the URL: pass --region');
  const query: Record<string, string> = {};
  for (const [key, value] of target.searchParams) query[key] = value;
  const request = new HttpRequest({
    method: 'GET',
    protocol: target.protocol,
    hostname: target.hostname,
    path: target.pathname,
    query,
    headers: { host: target.hostname },
  });
  const signer = new SignatureV4({
    credentials: defaultProvider(),
    region,
    service: 'execute-api',
    sha256: Sha256,
  });
  const signed = await signer.sign(request);
  const response = await fetch(target, { headers: signed.headers });
  process.stderr.write(`${response.status} ${response.statusText}\n`);
  process.stdout.write((await response.text()) + '\n');
  if (!response.ok) process.exitCode = 1;
}

runCli(main);
