// The upstream's response headers, as the agent may see them.

import { keepResponseHeader } from '../policy/headers.ts';
import type { Scrubber } from './scrub/scrubber.ts';

/** Headers the upstream's `Connection` names: hop-by-hop for this one connection (RFC 9110 §7.6.1). */
function connectionNamed(value: string | string[] | undefined): Set<string> {
  const named = new Set<string>();
  for (const v of value === undefined ? [] : Array.isArray(value) ? value : [value]) for (const n of v.split(',')) named.add(n.trim().toLowerCase());
  return named;
}

/**
 * Upstream headers as the agent may see them: hop-by-hop ones (listed, or named by the
 * upstream's `Connection`) and any in our own `x-aivault-` namespace dropped, names and values scrubbed as one text (a secret split over
 * two values of a repeated header, or over a name and its value, is found), and a header
 * whose name held a secret dropped whole.
 */
export function responseHeaders(headers: Record<string, string | string[] | undefined>, scrubber: Scrubber): Array<[string, string]> {
  const kept: Array<[string, string[]]> = [];
  const hopByHop = connectionNamed(headers['connection']);
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && keepResponseHeader(name) && !hopByHop.has(name.toLowerCase())) kept.push([name, Array.isArray(value) ? value : [value]]);
  }
  const flat = () => kept.flatMap(([name, values]) => values.map((v): [string, string] => [name, v]));
  // Each name, then its values: read as one text, so a secret cut over them is found.
  // Header text is bytes read as latin1, and goes back out the same way. Nearly always
  // nothing is found: one scan of the whole text says so, and the headers go out as they are.
  const pieces = kept.flatMap(([name, values]) => [name, ...values]);
  if (!scrubber.contains(Buffer.from(pieces.join(''), 'latin1'))) return flat();
  const scrubbed = scrubber.scrubPieces(pieces.map((t) => Buffer.from(t, 'latin1')));
  const out: Array<[string, string]> = [];
  let i = 0;
  for (const [name, values] of kept) {
    const sameName = scrubbed[i++]!.toString('latin1') === name;
    for (let j = 0; j < values.length; j++, i++) if (sameName) out.push([name, scrubbed[i]!.toString('latin1')]);
  }
  return out;
}
