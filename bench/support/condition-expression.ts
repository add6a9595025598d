/** DynamoDB's condition expressions, as far as the speed layer writes them: for the in-memory speed table. */

export type Item = Record<string, unknown>;
export interface Expression {
  readonly names?: Record<string, string>;
  readonly values?: Record<string, unknown>;
}

/** Evaluates a condition of comparisons, AND, OR, parentheses and attribute_(not_)exists on an item. */
export function evaluateCondition(
  text: string,
  item: Item | undefined,
  { names = {}, values = {} }: Expression,
): boolean {
  const tokens =
    text.match(/\(|\)|<=|>=|<>|<|>|=|\bAND\b|\bOR\b|attribute_not_exists|attribute_exists|[#:][\w]+/g) ?? [];
  let at = 0;
  const operand = (token: string): unknown =>
    token.startsWith('#') ? item?.[names[token] ?? token.slice(1)] : values[token];
  const primary = (): boolean => {
    const token = tokens[at++]!;
    if (token === '(') {
      const inner = or();
      at += 1;
      return inner;
    }
    if (token === 'attribute_not_exists' || token === 'attribute_exists') {
      const present = operand(tokens[at + 1]!) !== undefined;
      at += 3;
      return token === 'attribute_exists' ? present : !present;
    }
    const [left, op, right] = [operand(token), tokens[at++]!, operand(tokens[at++]!)];
    if (left === undefined || right === undefined || typeof left !== typeof right) return false;
    const l = left as string | number;
    const r = right as string | number;
    return op === '<'
      ? l < r
      : op === '<='
        ? l <= r
        : op === '>'
          ? l > r
          : op === '>='
            ? l >= r
            : op === '='
              ? l === r
              : l !== r;
  };
  const and = (): boolean => {
    let result = primary();
    while (tokens[at] === 'AND') {
      at += 1;
      result = primary() && result;
    }
    return result;
  };
  const or = (): boolean => {
    let result = and();
    while (tokens[at] === 'OR') {
      at += 1;
      result = and() || result;
    }
    return result;
  };
  return or();
}
