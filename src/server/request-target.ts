// The path and query of a request as the daemon routes it. A target that is not a path
// (`//`, `http://x`, `*`) is the sender's error, answered as such: never a throw outside
// the routes' error boundary.

import type { IncomingMessage } from 'node:http';
import { AivaultError } from '../errors.ts';

export function requestTarget(req: IncomingMessage): URL {
  const raw = req.url ?? '/';
  if (!raw.startsWith('/') || raw.startsWith('//')) throw new AivaultError('MALFORMED_URL', 'the request target must be a path (origin form, one leading /)');
  try {
    return new URL(raw, 'http://aivault');
  } catch {
    throw new AivaultError('MALFORMED_URL', 'the request target is not a valid path');
  }
}
