// The in-process services for CLI commands: opens the vault, composes the services, and
// always closes both (flushing the audit log). The services are imported on first use, so a
// command module that can reach them costs nothing to load until one runs.

import type { Services } from '../services.ts';
import { withVault, type GlobalOptions } from './context.ts';

export async function withServices<T>(opts: GlobalOptions, fn: (services: Services) => Promise<T>, how: { toVerify?: boolean } = {}): Promise<T> {
  const [{ builtinRegistry }, { composeServices }] = await Promise.all([import('../registry/registry.ts'), import('../services.ts')]);
  const registry = await builtinRegistry();
  return withVault(opts, async (vault) => {
    const services = composeServices(vault, registry);
    try {
      return await fn(services);
    } finally {
      await services.close();
    }
  }, how);
}
