// Counts the calls a vault makes to its storage: wraps `vault.storage` in a Proxy that
// counts every method called through it, so a test can tell reads per item from reads per list.
import type { Storage } from '../../src/storage/types.ts';
import type { Vault } from '../../src/vault/vault.ts';

export function countStorageCalls(vault: Vault): { calls: () => number; restore: () => void } {
  const real = vault.storage;
  let calls = 0;
  const counting = new Proxy(real, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        calls += 1;
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  const set = (s: Storage) => Object.defineProperty(vault, 'storage', { value: s, configurable: true, writable: false });
  set(counting);
  return { calls: () => calls, restore: () => set(real) };
}
