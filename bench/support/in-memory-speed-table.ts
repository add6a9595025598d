import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { evaluateCondition, type Expression, type Item } from './condition-expression.js';

/** DynamoDB's size of an item: attribute names plus values (a number: 1 byte per two digits, plus 1). */
export function itemBytes(item: Item): number {
  let bytes = 0;
  for (const [name, value] of Object.entries(item)) {
    bytes += Buffer.byteLength(name, 'utf8');
    const numberBytes = (n: number) =>
      Math.ceil(String(Math.abs(n)).replace(/^0+|\.|0+$/g, '').length / 2) + 1;
    if (typeof value === 'string') bytes += Buffer.byteLength(value, 'utf8');
    else if (typeof value === 'number') bytes += numberBytes(value);
    else if (value instanceof Set) for (const n of value as Set<number>) bytes += numberBytes(n);
    else if (value instanceof Uint8Array) bytes += value.length;
    else bytes += 1;
  }
  return bytes;
}

/**
 * A stand-in for the speed table that evaluates what the speed layer sends — UpdateItem with SET and ADD of
 * placeholders and a condition, Query by key — and charges what DynamoDB charges: a write (applied or not)
 * one unit per KB of the larger of the item before and after, a strongly consistent read one unit per 4 KB.
 * It refuses items over 400 KB, as DynamoDB does.
 */
export class InMemorySpeedTable {
  readonly items = new Map<string, Item>();
  writes = 0;
  writeUnits = 0;
  reads = 0;
  readUnits = 0;
  readonly client = {
    send: (command: { input: Record<string, unknown> }) => this.send(command),
  } as unknown as DynamoDBDocumentClient;

  private async send(command: {
    constructor: { name: string };
    input: Record<string, unknown>;
  }): Promise<unknown> {
    const input = command.input;
    const expression = {
      names: input.ExpressionAttributeNames as Record<string, string> | undefined,
      values: input.ExpressionAttributeValues as Record<string, unknown> | undefined,
    };
    if (command.constructor.name === 'UpdateCommand') return this.update(input, expression);
    if (command.constructor.name === 'QueryCommand') return this.query(input, expression);
    if (command.constructor.name === 'PutCommand') return this.put(input);
    throw new Error(`the in-memory speed table does not take ${command.constructor.name}`);
  }

  /** An unconditional PutItem (the rollup blocks): a write unit per KB of the item written. */
  private put(input: Record<string, unknown>) {
    const item = input.Item as Item;
    const units = Math.max(1, Math.ceil(itemBytes(item) / 1024));
    this.items.set(`${String(item.pk)}\n${String(item.sk)}`, item);
    this.writes += 1;
    this.writeUnits += units;
    return Promise.resolve({ ConsumedCapacity: { CapacityUnits: units } });
  }

  private update(input: Record<string, unknown>, expression: Expression) {
    const key = input.Key as { pk: string; sk: string };
    const id = `${key.pk}\n${key.sk}`;
    const before = this.items.get(id);
    const beforeBytes = before ? itemBytes(before) : 0;
    this.writes += 1;
    const condition = input.ConditionExpression as string | undefined;
    if (condition && !evaluateCondition(condition, before, expression)) {
      this.writeUnits += Math.max(1, Math.ceil(beforeBytes / 1024));
      throw new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} });
    }
    const after: Item = { ...(before ?? key) };
    const updated: Item = {};
    const { names = {}, values = {} } = expression;
    for (const [, action, clauses] of (input.UpdateExpression as string).matchAll(
      /(SET|ADD) (.*?)(?= SET | ADD |$)/g,
    )) {
      for (const clause of clauses!.split(', ')) {
        const [path, value] = action === 'SET' ? clause.split(' = ') : clause.split(' ');
        const name = names[path!] ?? path!;
        const operand = values[value!];
        // ADD: a number adds, a set (the visitor hashes) is a union.
        const next =
          action === 'SET'
            ? operand
            : operand instanceof Set
              ? new Set([...((after[name] as Set<number> | undefined) ?? []), ...operand])
              : ((after[name] as number | undefined) ?? 0) + (operand as number);
        after[name] = updated[name] = next;
      }
    }
    const afterBytes = itemBytes(after);
    if (afterBytes > 400 * 1024)
      throw new Error('ValidationException: Item size has exceeded the maximum allowed size');
    this.items.set(id, after);
    const units = Math.max(1, Math.ceil(Math.max(beforeBytes, afterBytes) / 1024));
    this.writeUnits += units;
    return {
      Attributes: input.ReturnValues === 'UPDATED_NEW' ? updated : undefined,
      ConsumedCapacity: { CapacityUnits: units },
    };
  }

  private query(input: Record<string, unknown>, { values = {} }: Expression) {
    const match = /^pk = (:\w+) AND sk BETWEEN (:\w+) AND (:\w+)$/.exec(
      input.KeyConditionExpression as string,
    );
    if (!match)
      throw new Error(
        `the in-memory speed table does not take the key condition ${String(input.KeyConditionExpression)}`,
      );
    const [pk, lo, hi] = [values[match[1]!], values[match[2]!], values[match[3]!]] as string[];
    const found = [...this.items.values()]
      .filter((item) => item.pk === pk && (item.sk as string) >= lo! && (item.sk as string) <= hi!)
      .sort((a, b) => ((a.sk as string) < (b.sk as string) ? -1 : 1));
    if (input.ScanIndexForward === false) found.reverse();
    const items = found.slice(0, (input.Limit as number | undefined) ?? found.length);
    this.reads += 1;
    this.readUnits += Math.max(1, Math.ceil(items.reduce((sum, item) => sum + itemBytes(item), 0) / 4096));
    return { Items: items.map((item) => ({ ...item })) };
  }
}
