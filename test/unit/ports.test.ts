import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  assertPortFree,
  findListener,
  freePort,
  isPortFree,
  looksLikeLeftoverEmulator,
  PortTakenError,
} from '../../local/ports.js';

describe('ports of the local stack', () => {
  let server: Server | undefined;
  afterEach(() => void server?.close());

  const listen = async (host: string): Promise<number> => {
    server = createServer();
    await new Promise<void>((resolve) => server!.listen(0, host, resolve));
    return (server.address() as { port: number }).port;
  };

  it('sees a port as taken whichever address its holder listens on', async () => {
    for (const host of ['127.0.0.1', '0.0.0.0', '::']) {
      const port = await listen(host);
      expect(await isPortFree(port), host).toBe(false);
      await new Promise((resolve) => server!.close(resolve));
      server = undefined;
      expect(await isPortFree(port), `${host}, closed`).toBe(true);
    }
  });

  it('finds the process that listens on a port (from /proc)', async () => {
    const port = await listen('127.0.0.1');
    const holder = findListener(port);
    expect(holder?.pid).toBe(process.pid);
    expect(holder?.command).toContain('node');
    expect(findListener(await freePort())).toBeUndefined();
  });

  it('refuses a taken port with an error that names the port and its holder', async () => {
    const port = await listen('127.0.0.1');
    const refused = await assertPortFree('dynamodb', port).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(PortTakenError);
    expect((refused as PortTakenError).exitCode).toBe(2);
    expect((refused as PortTakenError).message).toMatch(
      new RegExp(`^port ${port} \\(dynamodb\\) is already in use by pid ${process.pid}: .*node`),
    );
  });

  it('recognises an emulator left behind by an earlier stack by its command', () => {
    const leftover = (command: string) => looksLikeLeftoverEmulator({ pid: 1, command });
    expect(leftover('java -Xmx512m -jar /x/DynamoDBLocal.jar -port 8000 -sharedDb')).toBe(true);
    expect(leftover('/usr/bin/node /x/node_modules/s3rver/bin/s3rver.js -p 4569')).toBe(true);
    expect(leftover('/usr/bin/node /x/node_modules/kinesis-local/main.js')).toBe(true);
    expect(leftover('nginx: master process')).toBe(false);
    expect(looksLikeLeftoverEmulator(undefined)).toBe(false);
  });
});
