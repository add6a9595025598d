import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { afterAll, expect } from 'vitest';
import { LEDGER_FILES_DIR } from '../../support/aws-fidelity/ledger.js';

/** Marks each integration test file that ran to its end, so the ledger check can tell a partial run. */
afterAll(() => {
  const file = expect.getState().testPath;
  if (!file) return;
  mkdirSync(LEDGER_FILES_DIR, { recursive: true });
  writeFileSync(join(LEDGER_FILES_DIR, basename(file)), '');
});
