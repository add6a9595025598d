import {
  accessSync,
  chmodSync,
  constants,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { alive, npm, processesOf, until, type NpmProcess } from './support/npm-process.js';

/** `npm run test:endpoint` as a user runs it, in a process group of its own (support/npm-process.ts). */

const runs: NpmProcess[] = [];
const folders: string[] = [];
afterEach(() => {
  for (const run of runs.splice(0)) {
    run.kill();
    rmSync(run.dir, { recursive: true, force: true });
  }
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

/** PATH without any folder that holds a moto_server. */
function pathWithoutMoto(): string {
  return (process.env.PATH ?? '')
    .split(delimiter)
    .filter((dir) => {
      try {
        accessSync(join(dir, 'moto_server'), constants.X_OK);
        return false;
      } catch {
        return true;
      }
    })
    .join(delimiter);
}

/**
 * A moto_server on PATH that serves HTTP (500 to every call, so that the tests keep retrying) and ignores
 * SIGINT, SIGTERM and SIGHUP: only a kill ends it. Whatever the real one does on a signal, the command must
 * leave nothing behind. It writes its pid and one line per request into its folder.
 */
function stubbornMotoServer(): string {
  const folder = mkdtempSync(join(tmpdir(), 'moto-stand-in-'));
  folders.push(folder);
  const script = join(folder, 'moto_server');
  writeFileSync(
    script,
    `#!${process.execPath}
const { appendFileSync, writeFileSync } = require('node:fs');
const { createServer } = require('node:http');
const port = Number(process.argv[process.argv.indexOf('-p') + 1]);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => undefined);
writeFileSync(${JSON.stringify(join(folder, 'pid'))}, String(process.pid));
createServer((request, response) => {
  appendFileSync(${JSON.stringify(join(folder, 'requests'))}, request.method + ' ' + request.url + '\\n');
  response.writeHead(500).end();
}).listen(port, '127.0.0.1');
`,
  );
  chmodSync(script, 0o755);
  return folder;
}

/** A process's command line, for a failure message (it may be gone by the time it is read). */
function commandLine(pid: number): string {
  try {
    return `${pid}: ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ')}`;
  } catch {
    return `${pid}: (gone)`;
  }
}

describe('npm run test:endpoint', () => {
  it('exits 2 with the install command when moto_server is not on PATH and no endpoint is set', async () => {
    const run = npm(['run', 'test:endpoint'], undefined, { PATH: pathWithoutMoto() });
    runs.push(run);
    const exit = await run.exited;
    expect(exit.code, run.output()).toBe(2);
    expect(run.output()).toContain('moto_server is not on PATH');
    expect(run.output()).toContain('pip install "moto[server]"');
    expect(run.output()).not.toContain('running the integration project');
  });

  it.each([
    ['Ctrl-C (SIGINT to its process group, as a terminal sends it)', 'SIGINT', true],
    ['SIGTERM to npm alone (kill, a CI cancel)', 'SIGTERM', false],
  ] as const)(
    'stops the tests and its moto_server on %s, leaving no process behind',
    async (_, signal, toGroup) => {
      const moto = stubbornMotoServer();
      const dir = mkdtempSync(join(tmpdir(), 'test-endpoint-'));
      const run = npm(['run', 'test:endpoint', '--', 'test/integration/kinesis-contract.test.ts'], dir, {
        PATH: `${moto}${delimiter}${process.env.PATH ?? ''}`,
        PAGEVIEWS_TEST_REPORT: join(dir, 'report.json'),
      });
      runs.push(run);
      // Signalled while a test file is talking to the server (the command's own probe is a GET /): vitest and
      // its workers are all running.
      const requests = join(moto, 'requests');
      await until('a test calling moto_server', () =>
        existsSync(requests) &&
        readFileSync(requests, 'utf8')
          .split('\n')
          .some((l) => l && l !== 'GET /')
          ? true
          : undefined,
      );
      const motoPid = Number(readFileSync(join(moto, 'pid'), 'utf8'));
      expect(run.output()).toContain(`on http://127.0.0.1:`);
      expect(processesOf(dir).length).toBeGreaterThan(3);

      process.kill(toGroup ? -run.child.pid! : run.child.pid!, signal);
      const exit = await run.exited;
      expect(exit.code === 128 + (signal === 'SIGINT' ? 2 : 15) || exit.signal === signal, run.output()).toBe(
        true,
      );
      expect(run.output()).toContain(`${signal}: stopping the tests and moto_server`);
      expect(alive(motoPid), 'moto_server still running').toBe(false);
      const left = processesOf(dir).map(commandLine);
      expect(left, 'processes of the run still running').toEqual([]);
    },
  );
});
