// What an update of a definition changed, for its audit record: each field that differs, with
// list items added and removed (hosts, methods, path prefixes) and flags and names with their
// old and new value. Bindings are named by placeholder and the strategy by field: a change
// record never carries a secret (definitions hold none, only references).

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

function stringList(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

/** One entry per changed field of `after` (`createdAt` is not one); empty when nothing changed. */
export function describeChanges(before: object, after: object): string[] {
  const was = before as Record<string, unknown>;
  const out: string[] = [];
  for (const [field, next] of Object.entries(after)) {
    const prev = was[field];
    if (field === 'createdAt' || same(prev, next)) continue;
    if (stringList(prev) && stringList(next)) {
      const added = next.filter((x) => !prev.includes(x));
      const removed = prev.filter((x) => !next.includes(x));
      out.push(`${field}${added.length ? ` +${added.join(',')}` : ''}${removed.length ? ` -${removed.join(',')}` : ''}${added.length + removed.length === 0 ? ' reordered' : ''}`);
    } else if (typeof next === 'boolean' || typeof next === 'string') {
      out.push(`${field} ${String(prev)}->${String(next)}`);
    } else if (field === 'bindings' && next && typeof next === 'object') {
      const keys = new Set([...Object.keys(prev ?? {}), ...Object.keys(next)]);
      out.push(`bindings ${[...keys].filter((k) => (prev as Record<string, unknown>)?.[k] !== (next as Record<string, unknown>)[k]).map((k) => `{{${k}}}`).join(',')}`);
    } else if (field === 'limits') {
      out.push(`limits ${JSON.stringify(next)}`);
    } else {
      out.push(field);
    }
  }
  return out;
}
