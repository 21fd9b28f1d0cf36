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
  const hopByHop = connectionNamed(headers['connection']);
  // One pass: the pairs as they would go out, and each name then its values as one text.
  const flat: Array<[string, string]> = [];
  let text = '';
  for (const name of Object.keys(headers)) {
    const value = headers[name];
    // A name with no value is not sent, so it is not part of the text either.
    if (value === undefined || (Array.isArray(value) && value.length === 0) || !keepResponseHeader(name) || hopByHop.has(name.toLowerCase())) continue;
    text += name;
    if (typeof value === 'string') {
      flat.push([name, value]);
      text += value;
    } else {
      for (const v of value) {
        flat.push([name, v]);
        text += v;
      }
    }
  }
  // Read as one text, so a secret cut over a name and its values is found. Header text is
  // bytes read as latin1, and goes back out the same way. Nearly always nothing is found:
  // one scan of the whole text says so, and the headers go out as they are.
  if (!scrubber.contains(Buffer.from(text, 'latin1'))) return flat;
  const pieces: string[] = [];
  for (let i = 0; i < flat.length; i++) {
    if (i === 0 || flat[i]![0] !== flat[i - 1]![0]) pieces.push(flat[i]![0]);
    pieces.push(flat[i]![1]);
  }
  const scrubbed = scrubber.scrubPieces(pieces.map((t) => Buffer.from(t, 'latin1')));
  const out: Array<[string, string]> = [];
  let sameName = false;
  for (let i = 0, k = 0; i < flat.length; i++) {
    // A name whose text changed held (part of) a secret: the header goes whole.
    if (i === 0 || flat[i]![0] !== flat[i - 1]![0]) sameName = scrubbed[k++]!.toString('latin1') === flat[i]![0];
    const value = scrubbed[k++]!.toString('latin1');
    if (sameName) out.push([flat[i]![0], value]);
  }
  return out;
}
