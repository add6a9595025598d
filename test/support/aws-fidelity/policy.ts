import type { TemplateModel } from './template.js';

/**
 * IAM policy evaluation, enough of it to decide the calls this stack makes: identity-based Allow and Deny
 * statements with Action/NotAction, Resource/NotResource and wildcards, plus the Deny statements of the
 * resource policies on the same resources. Conditions are evaluated for the operators below when the request
 * context has the key; any other condition is taken the conservative way (an Allow does not apply, a Deny
 * does), so an unknown condition fails a check instead of passing it.
 * (IAM User Guide, "Policy evaluation logic" and "IAM JSON policy elements: Condition operators".)
 */

export interface Statement {
  readonly effect: 'Allow' | 'Deny';
  readonly actions?: readonly string[];
  readonly notActions?: readonly string[];
  readonly resources?: readonly string[];
  readonly notResources?: readonly string[];
  readonly principals?: readonly string[];
  readonly condition?: Record<string, Record<string, unknown>>;
  /** Where the statement comes from, for messages. */
  readonly source: string;
}

/** One permission a call needs: an action on a resource, with the request context IAM would see. */
export interface Requirement {
  readonly action: string;
  readonly resource: string;
  readonly context?: Readonly<Record<string, string | readonly string[]>>;
  /** Why the call needs it, when it is not the call's own action (e.g. what Athena does for the caller). */
  readonly why?: string;
}

const list = (value: unknown): string[] | undefined =>
  value === undefined ? undefined : (Array.isArray(value) ? value : [value]).map(String);

function principalsOf(value: unknown): string[] | undefined {
  if (value === undefined) return undefined;
  if (value === '*') return ['*'];
  const p = value as Record<string, unknown>;
  return [...(list(p.AWS) ?? []), ...(list(p.Service) ?? []), ...(list(p.Federated) ?? [])];
}

/** Statements of a resolved policy document. */
export function statementsOf(document: unknown, source: string, model?: TemplateModel): Statement[] {
  const resolved = (model ? model.resolve(document) : document) as { Statement?: unknown };
  const statements = Array.isArray(resolved.Statement) ? resolved.Statement : [resolved.Statement];
  return (statements as Record<string, unknown>[]).filter(Boolean).map((s, index) => ({
    effect: s.Effect as 'Allow' | 'Deny',
    ...(s.Action !== undefined ? { actions: list(s.Action)! } : {}),
    ...(s.NotAction !== undefined ? { notActions: list(s.NotAction)! } : {}),
    ...(s.Resource !== undefined ? { resources: list(s.Resource)! } : {}),
    ...(s.NotResource !== undefined ? { notResources: list(s.NotResource)! } : {}),
    ...(s.Principal !== undefined ? { principals: principalsOf(s.Principal)! } : {}),
    ...(s.Condition !== undefined
      ? { condition: s.Condition as Record<string, Record<string, unknown>> }
      : {}),
    source: `${source}#${String(s.Sid ?? index)}`,
  }));
}

/** IAM's wildcard match: `*` any run of characters, `?` one character. */
export function wildcard(pattern: string, value: string, ignoreCase = false): boolean {
  const escaped = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${escaped}$`, ignoreCase ? 'is' : 's').test(value);
}

const actionMatches = (patterns: readonly string[], action: string) =>
  patterns.some((p) => wildcard(p, action, true));
const resourceMatches = (patterns: readonly string[], resource: string) =>
  patterns.some((p) => wildcard(p, resource));

type ConditionResult = boolean | 'unknown';

function conditionHolds(
  condition: Record<string, Record<string, unknown>> | undefined,
  context: Readonly<Record<string, string | readonly string[]>>,
): ConditionResult {
  if (!condition) return true;
  for (const [rawOperator, keys] of Object.entries(condition)) {
    const ifExists = rawOperator.endsWith('IfExists');
    const operator = rawOperator.replace(/IfExists$/, '');
    for (const [key, expected] of Object.entries(keys)) {
      const actualValue = Object.entries(context).find(([k]) => k.toLowerCase() === key.toLowerCase())?.[1];
      const wanted = list(expected)!;
      if (operator === 'Null') {
        if ((actualValue === undefined) !== (wanted[0] === 'true')) return false;
        continue;
      }
      if (actualValue === undefined) {
        if (ifExists) continue;
        return false;
      }
      const actual = list(actualValue)!;
      const any = (test: (a: string, w: string) => boolean) =>
        actual.some((a) => wanted.some((w) => test(a, w)));
      let holds: boolean;
      switch (operator) {
        case 'StringEquals':
        case 'ArnEquals':
          holds = any((a, w) => a === w);
          break;
        case 'StringEqualsIgnoreCase':
          holds = any((a, w) => a.toLowerCase() === w.toLowerCase());
          break;
        case 'StringNotEquals':
          holds = !any((a, w) => a === w);
          break;
        case 'StringLike':
        case 'ArnLike':
          holds = any((a, w) => wildcard(w, a));
          break;
        case 'StringNotLike':
          holds = !any((a, w) => wildcard(w, a));
          break;
        case 'Bool':
          holds = any((a, w) => a.toLowerCase() === w.toLowerCase());
          break;
        default:
          return 'unknown';
      }
      if (!holds) return false;
    }
  }
  return true;
}

function applies(statement: Statement, requirement: Requirement, principal?: string): ConditionResult {
  const { action, resource } = requirement;
  if (statement.actions && !actionMatches(statement.actions, action)) return false;
  if (statement.notActions && actionMatches(statement.notActions, action)) return false;
  if (statement.resources && !resourceMatches(statement.resources, resource)) return false;
  if (statement.notResources && resourceMatches(statement.notResources, resource)) return false;
  if (principal !== undefined && statement.principals) {
    if (!statement.principals.some((p) => p === '*' || wildcard(p, principal))) return false;
  }
  return conditionHolds(statement.condition, requirement.context ?? {});
}

export interface Decision {
  readonly allowed: boolean;
  /** The Allow statements that grant it (for the list of grants no call used). */
  readonly allowedBy: readonly Statement[];
  readonly deniedBy?: Statement;
}

/**
 * Whether a principal may do what a requirement says: some Allow applies and no Deny does. A Deny with a
 * condition that cannot be decided counts as applying; an Allow with one does not.
 */
export function decide(
  requirement: Requirement,
  statements: readonly Statement[],
  principal?: string,
): Decision {
  const allowedBy: Statement[] = [];
  for (const statement of statements) {
    const result = applies(statement, requirement, principal);
    if (statement.effect === 'Deny' && result !== false)
      return { allowed: false, allowedBy, deniedBy: statement };
    if (statement.effect === 'Allow' && result === true) allowedBy.push(statement);
  }
  return { allowed: allowedBy.length > 0, allowedBy };
}

/** One action pattern on one resource pattern of an Allow statement: the unit in which grants are listed. */
export interface Grant {
  readonly statement: Statement;
  readonly action: string;
  readonly resource: string;
}

export function grantsOf(statements: readonly Statement[]): Grant[] {
  return statements
    .filter((s) => s.effect === 'Allow' && s.actions && s.resources)
    .flatMap((statement) =>
      statement.actions!.flatMap((action) =>
        statement.resources!.map((resource) => ({ statement, action, resource })),
      ),
    );
}

/** Whether a requirement that a statement allows is covered by this one grant of it. */
export function grantCovers(grant: Grant, requirement: Requirement): boolean {
  return wildcard(grant.action, requirement.action, true) && wildcard(grant.resource, requirement.resource);
}
