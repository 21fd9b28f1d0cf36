// Commander helpers for repeatable options.

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Splits "NAME: VALUE" (headers) at the first ":". */
export function splitHeader(raw: string): [string, string] {
  const i = raw.indexOf(':');
  if (i <= 0) throw new Error('expected "Name: value"');
  return [raw.slice(0, i).trim(), raw.slice(i + 1).trim()];
}

/** Splits "name=value" at the first "=". */
export function splitPair(raw: string): [string, string] {
  const i = raw.indexOf('=');
  if (i <= 0) throw new Error('expected "name=value"');
  return [raw.slice(0, i), raw.slice(i + 1)];
}
