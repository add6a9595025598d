import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { resourceNames } from '../../shared/resources.js';
import {
  localStackState,
  NoLocalStackError,
  requireLocalStack,
  writeStackFile,
  type StackFile,
} from '../../local/stack-file.js';

const stack = (pid: number, credentials: StackFile['credentials']): StackFile => ({
  region: 'us-east-1',
  credentials,
  endpoints: { kinesis: 'http://127.0.0.1:1', dynamodb: 'http://127.0.0.1:2', s3: 'http://127.0.0.1:3' },
  names: resourceNames(),
  pid,
  emulatorPids: [],
  startedAt: '2026-11-25T12:00:00.000Z',
});

/** A pid that surely belonged to a process that is gone now. */
const deadPid = () => spawnSync(process.execPath, ['-e', '']).pid!;

describe('the stack file', () => {
  const path = () => {
    const dir = mkdtempSync(join(tmpdir(), 'stack-file-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    return join(dir, 'stack.json');
  };

  it('is readable by its owner only and holds the credentials as two plain strings', () => {
    const file = path();
    // What the SDK leaves on a credentials object it has used.
    const used = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', $source: { CREDENTIALS_CODE: 'e' } };
    writeStackFile(stack(process.pid, used), file);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const written = JSON.parse(readFileSync(file, 'utf8')) as StackFile;
    expect(written.credentials).toEqual({ accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' });
  });

  it('tells a running stack from a stale file and from none', () => {
    const file = path();
    expect(localStackState(file)).toEqual({ state: 'none' });
    writeStackFile(stack(process.pid, { accessKeyId: 'a', secretAccessKey: 'b' }), file);
    expect(localStackState(file).state).toBe('running');
    expect(requireLocalStack('', file).pid).toBe(process.pid);
    const gone = deadPid();
    writeFileSync(file, JSON.stringify(stack(gone, { accessKeyId: 'a', secretAccessKey: 'b' })));
    expect(localStackState(file).state).toBe('stale');
  });

  it('makes tools say that no local stack is running, and why', () => {
    const file = path();
    const refusal = (remedy: string) => {
      try {
        requireLocalStack(remedy, file);
      } catch (error) {
        return error as NoLocalStackError;
      }
      throw new Error('a stack was found');
    };
    const none = refusal(', or pass --stream');
    expect(none).toBeInstanceOf(NoLocalStackError);
    expect(none.exitCode).toBe(2);
    expect(none.message).toBe(
      `no local stack is running (no ${file}): start one with \`npm start\`, or pass --stream`,
    );
    const gone = deadPid();
    writeFileSync(file, JSON.stringify(stack(gone, { accessKeyId: 'a', secretAccessKey: 'b' })));
    expect(refusal('').message).toBe(
      `no local stack is running (${file} is stale: the stack that wrote it (pid ${gone}, started 2026-11-25T12:00:00.000Z) is gone): start one with \`npm start\``,
    );
  });
});
