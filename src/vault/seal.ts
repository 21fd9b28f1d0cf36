// The seal over the vault's state: an HMAC, under a subkey of the vault key, over a digest
// of each table the owner controls, rewritten by every change in that change's own
// transaction (see storage/state.ts for what it covers). A row deleted, rolled back,
// added or edited by anything but aivault leaves a table whose digest the seal does not
// match; only a process holding the unlocked vault can write a seal that does.

import { createHmac, timingSafeEqual, type KeyObject } from 'node:crypto';
import { canonicalJson } from '../registry/canonical.ts';
import type { StateReading, StateSealer } from '../storage/types.ts';

export function createStateSealer(key: KeyObject): StateSealer {
  return { mac: (tables) => createHmac('sha256', key).update('aivault state v1\u0000').update(canonicalJson(tables)).digest('hex') };
}

/**
 * A vault from before seals, as the seals' migration left it: marked, no seal, no audit
 * anchor. Only such a vault is sealed on open; the mark beside a seal or an anchor was
 * planted (it is outside the seal) to have the owner's next open seal a tampered state.
 */
export function awaitsFirstSeal(reading: StateReading): boolean {
  return reading.unsealed && reading.seal === undefined && !reading.anchored;
}

export const PLANTED_UNSEALED_MARK = "the mark of a vault from before seals sits beside a seal or an audit anchor: it was planted to have the state resealed (tampering); aivault will not reseal it";

/** What is wrong with the state as read; empty when it matches its seal. */
export function stateProblems(sealer: StateSealer, reading: StateReading): string[] {
  const { seal, current } = reading;
  if (reading.unsealed) {
    if (awaitsFirstSeal(reading)) return ['the vault has not been sealed yet (it predates seals and no unlocked process has opened it)'];
    return [PLANTED_UNSEALED_MARK, ...stateProblems(sealer, { ...reading, unsealed: false })];
  }
  if (!seal || typeof seal.mac !== 'string' || typeof seal.tables !== 'object' || seal.tables === null) return ["the vault's state seal is missing"];
  const expected = Buffer.from(sealer.mac(seal.tables), 'utf8');
  const given = Buffer.from(seal.mac, 'utf8');
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) return ["the vault's state seal is forged or damaged"];
  const changed = Object.keys(current).filter((table) => seal.tables[table] !== current[table]);
  return changed.length === 0 ? [] : [`changed by something other than aivault since its last write: ${changed.join(', ')}`];
}
