// LLM-shaped answers (`aivault json`, `aivault markdown`): one function, run where the
// scrubber is, in the CLI's own broker or in the daemon. Rendering decodes (JSON escapes)
// and re-arranges text, so what it produces is scrubbed again before anyone sees it.

import { TextDecoder } from 'node:util';
import type { PlannedRequest } from './broker.ts';
import { renderMarkdown } from './markdown.ts';

export type Render = { as: 'json' } | { as: 'markdown'; namespace?: string; exclude?: string[]; wrap?: string[] };

/** A body as text when it is UTF-8, otherwise base64. */
export function bodyForJson(bytes: Buffer): { body: string; bodyEncoding: 'utf8' | 'base64' } {
  try {
    return { body: new TextDecoder('utf-8', { fatal: true }).decode(bytes), bodyEncoding: 'utf8' };
  } catch {
    return { body: bytes.toString('base64'), bodyEncoding: 'base64' };
  }
}

/** The body as JSON when it is JSON, otherwise its text (or base64 when not UTF-8). */
function parsedBody(bytes: Buffer): { json: unknown } | { text: string } | { base64: string } {
  const decoded = bodyForJson(bytes);
  if (decoded.bodyEncoding === 'base64') return { base64: decoded.body };
  try {
    return { json: JSON.parse(decoded.body) };
  } catch {
    return { text: decoded.body };
  }
}

/** The rendered answer, scrubbed with `scrub` (the response's own scrubber). */
export function renderAnswer(render: Render, answer: { planned: PlannedRequest; status: number }, body: Buffer, scrub: (text: string) => string): string {
  const parsed = parsedBody(body);
  if (render.as === 'json') return scrub(JSON.stringify({ planned: answer.planned, response: { status: answer.status, ...parsed } }, null, 2));
  const value = 'json' in parsed ? parsed.json : 'text' in parsed ? parsed.text : `(${Buffer.from(parsed.base64, 'base64').length} bytes of binary data)`;
  const title = `${answer.planned.method} ${answer.planned.capability} → HTTP ${answer.status}`;
  return scrub(renderMarkdown(value, { exclude: render.exclude ?? [], wrap: render.wrap ?? [], title, ...(render.namespace !== undefined ? { namespace: render.namespace } : {}) }));
}
