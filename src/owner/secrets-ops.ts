// Owner operations on secrets: values go in (and are wiped after use), metadata comes out.

import { z } from 'zod';
import { validateSecret } from '../broker/validate-secret.ts';
import { builtinCredentialStatus } from '../registry/provisioning.ts';
import { flag, name, operation, secretValue } from './operation.ts';

const scope = name.optional();
const ref = z.strictObject({ secret: name, scope });
const group = z.strictObject({ secret: name, workspaceId: name, groupId: name, scope });

/** The value as bytes for the vault, wiped once `fn` is done with it. */
async function withBytes<T>(value: string, fn: (bytes: Buffer) => Promise<T>): Promise<T> {
  const bytes = Buffer.from(value, 'utf8');
  try {
    return await fn(bytes);
  } finally {
    bytes.fill(0);
  }
}

export const secretsOperations = {
  'secrets.create': operation({
    args: z.strictObject({ name, value: secretValue, scope, description: z.string().max(1024).optional(), aliases: z.array(name).max(64).optional(), allowShort: flag }),
    async run({ vault, registry }, a) {
      const info = await withBytes(a.value, (value) =>
        vault.createSecret({ name: a.name, value, ...(a.scope ? { scope: a.scope } : {}), description: a.description ?? null, ...(a.aliases ? { aliases: a.aliases } : {}), allowShort: a.allowShort === true }),
      );
      // A secret pinned to a built-in provider says how far that provider is from ready.
      const provider = info.pinnedProvider ? registry.providers.get(info.pinnedProvider) : undefined;
      const status = provider ? await builtinCredentialStatus(vault.storage, provider, info.scope) : undefined;
      return { ...info, ...(status ? { provisioning: { provider: status.provider, ready: status.ready, missingSecrets: status.missing, unboundTenants: status.unboundTenants } } : {}) };
    },
  }),
  'secrets.import': operation({
    args: z.strictObject({ entries: z.array(z.strictObject({ name, value: secretValue })).min(1).max(10_000), scope, overwrite: flag, allowShort: flag }),
    async run({ vault }, a) {
      const values = a.entries.map((e) => ({ name: e.name, value: Buffer.from(e.value, 'utf8') }));
      try {
        const imported = await vault.importSecrets(values, { ...(a.scope ? { scope: a.scope } : {}), overwrite: a.overwrite === true, allowShort: a.allowShort === true });
        return imported.map(({ info, action }) => ({ name: info.name, scope: info.scope, action, ref: info.ref }));
      } finally {
        for (const v of values) v.value.fill(0);
      }
    },
  }),
  'secrets.list': operation({ args: z.strictObject({ scope }), run: ({ vault }, a) => vault.listSecrets(a.scope) }),
  'secrets.describe': operation({ args: ref, run: ({ vault }, a) => vault.describeSecret(a.secret, a.scope) }),
  'secrets.rotate': operation({
    args: z.strictObject({ secret: name, value: secretValue, scope, allowShort: flag }),
    run: ({ vault }, a) => withBytes(a.value, (value) => vault.rotateSecret(a.secret, value, a.scope, a.allowShort ? { allowShort: true } : {})),
  }),
  'secrets.rollback': operation({ args: ref, run: ({ vault }, a) => vault.rollbackSecret(a.secret, a.scope) }),
  'secrets.delete': operation({ args: ref, run: ({ vault }, a) => vault.deleteSecret(a.secret, a.scope) }),
  'secrets.update': operation({
    args: z.strictObject({ secret: name, name: name.optional(), aliases: z.array(name).max(64).optional(), clearAliases: flag, scope }),
    run: ({ vault }, a) => vault.updateSecret(a.secret, { ...(a.name !== undefined ? { name: a.name } : {}), ...(a.aliases ? { aliases: a.aliases } : {}), ...(a.clearAliases ? { clearAliases: true } : {}) }, a.scope),
  }),
  'secrets.attach-group': operation({ args: group, run: ({ vault }, a) => vault.setSecretGroup(a.secret, a.workspaceId, a.groupId, true, a.scope) }),
  'secrets.detach-group': operation({ args: group, run: ({ vault }, a) => vault.setSecretGroup(a.secret, a.workspaceId, a.groupId, false, a.scope) }),
  'secrets.validate': operation({ args: ref, run: (services, a) => validateSecret(services, a.secret, a.scope) }),
  'secrets.compare': operation({
    args: z.strictObject({ secret: name, value: secretValue, scope }),
    run: ({ vault }, a) => withBytes(a.value, async (candidate) => ({ match: await vault.compareSecret(a.secret, candidate, a.scope) })),
  }),
  'secrets.prove': operation({
    args: z.strictObject({ secret: name, challenge: z.string().max(1024), scope }),
    run: async ({ vault }, a) => ({ algorithm: 'HMAC-SHA256' as const, proof: await vault.proveSecret(a.secret, a.challenge, a.scope) }),
  }),
};
