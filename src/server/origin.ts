// A browser page must not reach the daemon (DNS rebinding, drive-by requests to loopback);
// the agents it serves are programs, which send no Origin. Every route and every upgrade.

import type { IncomingMessage } from 'node:http';
import { AivaultError } from '../errors.ts';

export function assertNotFromWebPage(req: IncomingMessage): void {
  if (req.headers.origin !== undefined) throw new AivaultError('ORIGIN_REFUSED', 'requests from web pages (with an Origin header) are refused');
}
