// The in-process broker for CLI commands: opens the vault, builds the broker, and
// always closes both (flushing the audit log).

import { Broker } from '../broker/broker.ts';
import { builtinRegistry } from '../registry/registry.ts';
import { withVault, type GlobalOptions } from './context.ts';

export async function withBroker<T>(opts: GlobalOptions, fn: (broker: Broker) => Promise<T>): Promise<T> {
  const registry = await builtinRegistry();
  return withVault(opts, async (vault) => {
    const broker = new Broker(vault, registry);
    try {
      return await fn(broker);
    } finally {
      await broker.close();
    }
  });
}
