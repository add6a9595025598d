import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { extname, join, normalize, resolve } from 'node:path';
import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2 } from 'aws-lambda';

/**
 * Plays API Gateway's HTTP API in front of a Lambda handler: each request becomes a payload-v2 event and the
 * result goes back as the HTTP response. Routes with a handler of their own (the collector) come first; other
 * paths outside /v1/ are served from a static folder (the dashboard).
 */

export type HttpApiHandler = (event: APIGatewayProxyEventV2) => Promise<APIGatewayProxyResultV2>;

/** Paths answered by another function than the default one, as API Gateway routes are. */
export interface HttpApiRoute {
  readonly paths: readonly string[];
  readonly handler: HttpApiHandler;
}

export interface HttpApiServerOptions {
  readonly handler: HttpApiHandler;
  readonly routes?: readonly HttpApiRoute[];
  readonly port?: number;
  readonly host?: string;
  /** Static files for paths outside /v1/, e.g. dashboard/dist. */
  readonly staticDir?: string;
  readonly onRequest?: (method: string, path: string, status: number) => void;
}

export interface RunningHttpApi {
  readonly url: string;
  readonly server: Server;
  close(): Promise<void>;
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.map': 'application/json',
};

/** The payload-v2 event API Gateway builds for a request. */
export function toApiGatewayEvent(request: IncomingMessage, body: Buffer): APIGatewayProxyEventV2 {
  const url = new URL(request.url ?? '/', 'http://localhost');
  const headers: Record<string, string> = {};
  const cookies: string[] = [];
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined) continue;
    if (name === 'cookie') cookies.push(...String(value).split(/;\s*/));
    else headers[name.toLowerCase()] = Array.isArray(value) ? value.join(',') : value;
  }
  // API Gateway joins repeated query parameters with commas.
  const query: Record<string, string> = {};
  for (const [name, value] of url.searchParams)
    query[name] = name in query ? `${query[name]},${value}` : value;
  const now = new Date();
  const textual = /^(text\/|application\/(json|x-www-form-urlencoded))/.test(headers['content-type'] ?? '');
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: url.pathname,
    rawQueryString: url.search.slice(1),
    ...(cookies.length ? { cookies } : {}),
    headers,
    ...(Object.keys(query).length ? { queryStringParameters: query } : {}),
    requestContext: {
      accountId: '000000000000',
      apiId: 'local',
      domainName: headers.host ?? 'localhost',
      domainPrefix: (headers.host ?? 'localhost').split('.')[0]!,
      http: {
        method: request.method ?? 'GET',
        path: url.pathname,
        protocol: `HTTP/${request.httpVersion}`,
        sourceIp: request.socket.remoteAddress ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: randomUUID(),
      routeKey: '$default',
      stage: '$default',
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
    },
    ...(body.length ? { body: textual ? body.toString('utf8') : body.toString('base64') } : {}),
    isBase64Encoded: body.length > 0 && !textual,
  };
}

/** Writes a handler result as API Gateway does; a bare string or object means 200 application/json. */
export function writeResult(response: ServerResponse, result: APIGatewayProxyResultV2): number {
  if (typeof result === 'string' || !result || typeof result !== 'object' || !('statusCode' in result)) {
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(typeof result === 'string' ? result : JSON.stringify(result));
    return 200;
  }
  const status = result.statusCode ?? 200;
  const headers: Record<string, string | string[]> = { ...(result.headers as Record<string, string>) };
  if (result.cookies?.length) headers['set-cookie'] = result.cookies;
  response.writeHead(status, headers);
  response.end(
    result.body === undefined ? '' : Buffer.from(result.body, result.isBase64Encoded ? 'base64' : 'utf8'),
  );
  return status;
}

function serveStatic(dir: string, path: string, response: ServerResponse): number {
  const root = resolve(dir);
  let file = normalize(join(root, decodeURIComponent(path)));
  if (!file.startsWith(root)) file = join(root, 'index.html');
  if (!existsSync(file) || statSync(file).isDirectory()) file = join(root, 'index.html');
  if (!existsSync(file)) {
    response.writeHead(404, { 'content-type': 'text/plain' });
    response.end('not found');
    return 404;
  }
  response.writeHead(200, { 'content-type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream' });
  response.end(readFileSync(file));
  return 200;
}

export async function startHttpApi(options: HttpApiServerOptions): Promise<RunningHttpApi> {
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const path = new URL(request.url ?? '/', 'http://localhost').pathname;
      const done = (status: number) => options.onRequest?.(request.method ?? 'GET', path, status);
      const route = options.routes?.find((r) => r.paths.includes(path));
      if (!route && !path.startsWith('/v1/') && options.staticDir && existsSync(options.staticDir)) {
        done(serveStatic(options.staticDir, path, response));
        return;
      }
      (route?.handler ?? options.handler)(toApiGatewayEvent(request, Buffer.concat(chunks)))
        .then((result) => done(writeResult(response, result)))
        .catch(() => {
          // API Gateway answers a failed integration with 500 Internal Server Error.
          response.writeHead(500, { 'content-type': 'application/json' });
          response.end(JSON.stringify({ message: 'Internal Server Error' }));
          done(500);
        });
    });
  });
  return { ...(await listen(server, options.port, options.host)), server };
}

/** Listens on `host:port` (0 picks a free port); `close` also ends the connections still open. */
export async function listen(
  server: Server,
  port = 0,
  host = '127.0.0.1',
): Promise<{ readonly url: string; close(): Promise<void> }> {
  await new Promise<void>((resolvePromise, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolvePromise);
  });
  const address = server.address();
  return {
    url: `http://${host}:${typeof address === 'object' && address ? address.port : 0}`,
    close: () =>
      new Promise((resolvePromise) => {
        server.closeAllConnections();
        server.close(() => resolvePromise());
      }),
  };
}
