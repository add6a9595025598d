/** A small JSON Schema check (the subset the OpenAPI document uses): type, enum, required, properties, items, $ref. */
export function schemaErrors(schema: unknown, value: unknown, root: unknown, path = '$'): string[] {
  const s = schema as Record<string, unknown>;
  if (typeof s.$ref === 'string') {
    const target = s.$ref
      .replace(/^#\//, '')
      .split('/')
      .reduce((node: unknown, key) => (node as Record<string, unknown>)[key], root);
    return schemaErrors(target, value, root, path);
  }
  const errors: string[] = [];
  const types = s.type === undefined ? [] : Array.isArray(s.type) ? (s.type as string[]) : [s.type as string];
  const typeOf = (v: unknown) =>
    v === null
      ? 'null'
      : Array.isArray(v)
        ? 'array'
        : typeof v === 'number'
          ? Number.isInteger(v)
            ? 'integer'
            : 'number'
          : typeof v;
  const actual = typeOf(value);
  if (types.length && !types.some((t) => t === actual || (t === 'number' && actual === 'integer'))) {
    return [`${path}: expected ${types.join('|')}, got ${actual}`];
  }
  if (Array.isArray(s.enum) && !s.enum.includes(value))
    errors.push(`${path}: ${JSON.stringify(value)} not in enum`);
  if (typeof s.minimum === 'number' && typeof value === 'number' && value < s.minimum)
    errors.push(`${path}: below minimum`);
  if (s.format === 'date-time' && typeof value === 'string' && Number.isNaN(Date.parse(value)))
    errors.push(`${path}: not a date-time`);
  if (actual === 'object' && value !== null) {
    const object = value as Record<string, unknown>;
    for (const key of (s.required as string[] | undefined) ?? [])
      if (!(key in object)) errors.push(`${path}.${key}: required`);
    const properties = (s.properties as Record<string, unknown> | undefined) ?? {};
    for (const [key, child] of Object.entries(object)) {
      if (!(key in properties)) errors.push(`${path}.${key}: not in the schema`);
      else errors.push(...schemaErrors(properties[key], child, root, `${path}.${key}`));
    }
  }
  if (actual === 'array' && s.items)
    (value as unknown[]).forEach((item, i) =>
      errors.push(...schemaErrors(s.items, item, root, `${path}[${i}]`)),
    );
  return errors;
}
