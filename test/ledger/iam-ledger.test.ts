import { readdirSync } from 'node:fs';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { TrinoSQL } from 'dt-sql-parser';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../infra/config.js';
import { PageViewsStack } from '../../infra/stack.js';
import { FUNCTIONS, type FunctionName, type LedgerEntry } from '../../shared/call-ledger.js';
import {
  checkLedger,
  completedTestFiles,
  readLedger,
  type LedgerReport,
} from '../support/aws-fidelity/ledger.js';
import { StackModel } from '../support/aws-fidelity/stack-model.js';
import type { CfnTemplate } from '../support/aws-fidelity/template.js';

/**
 * Least privilege as a measured fact: every AWS call each function's code made during the integration tests
 * (the call ledger, shared/call-ledger.ts), and everything AWS does with a function's role, evaluated against
 * that role in the synthesized template. Runs after the integration project (vitest.config.ts: its own group).
 */

/** Grants the tests cannot exercise, each with the reason it stays. Anything else unused fails. */
const KEPT_UNUSED: readonly {
  readonly fn: FunctionName | '*';
  readonly grant: RegExp;
  readonly reason: string;
}[] = [
  {
    fn: '*',
    grant: /^logs:CreateLogGroup on \* \(aws-managed:AWSLambdaBasicExecutionRole/,
    reason:
      'Part of the AWS managed AWSLambdaBasicExecutionRole (cdk-nag IAM4 acknowledges it in infra/nag.ts); the ' +
      'function log groups exist before the functions run, so the runtime never creates one.',
  },
];

function synthesizedTemplate(): CfnTemplate {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new PageViewsStack(app, 'PageViews', { config: parseConfig({}) });
  return Template.fromStack(stack).toJSON() as CfnTemplate;
}

describe('the call ledger against the synthesized roles', () => {
  let template: CfnTemplate;
  let stack: StackModel;
  let entries: LedgerEntry[];
  let report: LedgerReport;
  beforeAll(() => {
    template = synthesizedTemplate();
    stack = new StackModel(template);
    entries = readLedger();
    report = checkLedger(stack, entries);
  });

  it('was written by a complete run of the integration tests', () => {
    const integrationFiles = readdirSync(new URL('../integration/', import.meta.url)).filter((f) =>
      f.endsWith('.test.ts'),
    );
    const missing = integrationFiles.filter((f) => !completedTestFiles().includes(f));
    expect(missing, 'run the integration project in full before this one (npm test does)').toEqual([]);
  });

  it('covers every function of the stack', () => {
    expect(report.invoked).toEqual([...FUNCTIONS]);
  });

  it('maps every recorded call to IAM actions on resources of its function', () => {
    expect(report.unmapped).toEqual([]);
  });

  it("allows every call each function made, and what AWS does with the function's role", () => {
    expect(report.refused).toEqual([]);
  });

  it('keeps no grant that no call needed, except the ones with a stated reason', () => {
    const unexplained = FUNCTIONS.flatMap((fn) =>
      report.unused[fn]
        .filter((grant) => !KEPT_UNUSED.some((k) => (k.fn === '*' || k.fn === fn) && k.grant.test(grant)))
        .map((grant) => `${fn}: ${grant}`),
    );
    expect(unexplained).toEqual([]);
  });

  it('sent Athena only statements that a Trino grammar accepts', () => {
    const statements = new Set(
      entries
        .filter((e) => e.kind === 'call' && e.service === 'athena' && e.operation === 'StartQueryExecution')
        .map((e) => String(e.input?.QueryString)),
    );
    expect(statements.size).toBeGreaterThan(0);
    for (const statement of statements) expect(new TrinoSQL().validate(statement)).toEqual([]);
  });

  it('fails, naming the call, when a grant the code needs is taken away', () => {
    const withoutUpdates = structuredClone(template);
    for (const resource of Object.values(withoutUpdates.Resources)) {
      if (resource.Type !== 'AWS::IAM::Policy') continue;
      const document = resource.Properties!.PolicyDocument as { Statement: { Action: string | string[] }[] };
      for (const statement of document.Statement) {
        statement.Action = [statement.Action].flat().filter((a) => a !== 'dynamodb:UpdateItem');
      }
    }
    const broken = checkLedger(new StackModel(withoutUpdates), entries);
    expect(broken.refused).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^speed: dynamodb:UpdateItem on arn:aws:dynamodb:.*:table\//),
      ]),
    );
  });
});
