import { Sha256 } from '@aws-crypto/sha256-js';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';

/** The region of an API Gateway URL (`…execute-api.<region>.amazonaws.com`), if it is one. */
export function apiRegion(url: URL): string | undefined {
  return /execute-api\.([a-z0-9-]+)\.amazonaws\.com/.exec(url.hostname)?.[1];
}

/**
 * GET with a SigV4 signature for `execute-api` (the query API's default IAM authorization), with the usual AWS
 * credential chain (environment, profile, SSO, instance role).
 */
export async function signedGet(target: URL, region: string): Promise<Response> {
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
  return fetch(target, { headers: signed.headers });
}
