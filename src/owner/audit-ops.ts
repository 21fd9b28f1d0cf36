// Owner operations on the audit log: read it, verify the chain, keep its head.

import { z } from 'zod';
import { name, none, operation } from './operation.ts';

/** The most records one answer holds; `afterSeq` pages on. */
/** The most records one answer holds: a caller pages on with afterSeq. */
export const AUDIT_PAGE = 10_000;

export const auditOperations = {
  'audit.list': operation({
    args: z.strictObject({ capability: name.optional(), since: name.optional(), afterSeq: z.number().int().min(0).optional(), limit: z.number().int().min(1).max(AUDIT_PAGE).optional() }),
    run: ({ vault }, a) => vault.audit.list({ ...(a.capability ? { capability: a.capability } : {}), ...(a.since ? { since: a.since } : {}), ...(a.afterSeq !== undefined ? { afterSeq: a.afterSeq } : {}), limit: a.limit ?? AUDIT_PAGE }),
  }),
  'audit.verify': operation({
    args: z.strictObject({ against: z.strictObject({ seq: z.number().int().min(1), hash: z.string().max(128), at: z.string().max(64), mac: z.string().max(128) }).optional() }),
    run: ({ vault }, a) => vault.audit.verify(a.against ? { against: a.against } : {}),
    opensToVerify: true,
  }),
  'audit.head': operation({ args: none, run: ({ vault }) => vault.audit.keptHead() }),
};
