import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readCounts } from '../../tools/test-counts.js';

describe('the closing line counts (tools/test-counts.ts)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'test-counts-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const report = (name: string, body: unknown) => {
    const path = join(dir, name);
    writeFileSync(path, JSON.stringify(body));
    return path;
  };

  it('counts a file whose setup failed (its tests skipped) as one failure', () => {
    const path = report('setup.json', {
      numPassedTests: 5,
      numFailedTests: 0,
      testResults: [
        { status: 'passed', assertionResults: [{ status: 'passed' }] },
        { status: 'failed', assertionResults: [{ status: 'skipped' }, { status: 'skipped' }] },
      ],
    });
    expect(readCounts(path)).toEqual({ passed: 5, failed: 1 });
  });

  it('does not count a failed file twice when its failures are its tests', () => {
    const path = report('tests.json', {
      numPassedTests: 2,
      numFailedTests: 2,
      testResults: [{ status: 'failed', assertionResults: [{ status: 'failed' }, { status: 'failed' }] }],
    });
    expect(readCounts(path)).toEqual({ passed: 2, failed: 2 });
  });

  it('gives nothing for a run that wrote no report', () => {
    expect(readCounts(join(dir, 'missing.json'))).toBeUndefined();
  });
});
