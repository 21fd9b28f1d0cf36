// The guide `aivault init` runs on a terminal: store a first key for a registry provider,
// check it with the provider, and show the invoke that uses it. Values are read hidden
// and never echoed; Enter at the first question skips it all.

import { validateSecret } from '../broker/validate-secret.ts';
import { composeServices } from '../services.ts';
import type { Registry } from '../registry/registry.ts';
import type { Vault } from '../vault/vault.ts';
import { note } from './output.ts';
import { readHidden, readLine } from './prompt.ts';

const POPULAR = ['openai', 'anthropic', 'github', 'stripe', 'slack', 'gemini', 'mistral', 'notion'];

export async function firstRunGuide(vault: Vault, registry: Registry): Promise<void> {
  const answer = (await readLine(`\nAdd your first API key now? Provider (${POPULAR.filter((p) => registry.providers.has(p)).slice(0, 5).join(', ')}, … or Enter to skip): `)).trim().toLowerCase();
  if (answer === '') {
    note('skipped; later: aivault secrets create --name OPENAI_API_KEY --value-stdin');
    return;
  }
  const provider = registry.providers.get(answer);
  if (!provider) {
    note(`no built-in provider "${answer.slice(0, 40)}"; see aivault registry list, or define your own with aivault credential create`);
    return;
  }
  const names = Object.keys(provider.vaultSecrets ?? {});
  if (names.length === 0) {
    note(`${provider.provider} needs no stored secret of its own; see aivault registry show ${provider.provider}`);
    return;
  }
  for (const name of names) {
    const value = await readHidden(`${name} (input hidden): `);
    if (value === '') {
      note(`nothing entered for ${name}; stopping here (aivault secrets create --name ${name} --value-stdin)`);
      return;
    }
    await vault.createSecret({ name, value: Buffer.from(value, 'utf8') });
    note(`stored ${name} (pinned to ${provider.provider})`);
  }
  const services = composeServices(vault, registry);
  try {
    const check = provider.validate;
    if (check) {
      const result = await validateSecret(services, names[0]!);
      note(`checked with ${provider.provider}: ${result.verdict} (${result.reason})`);
      if (result.verdict === 'invalid') note(`fix it with: aivault secrets rotate ${names[0]} --value-stdin`);
    }
    const cap = check ? check.capability : provider.capabilities[0]!.id;
    const method = check ? check.method : provider.capabilities[0]!.allow.methods[0]!;
    const path = check ? check.path : provider.capabilities[0]!.allow.pathPrefixes[0]!;
    for (const line of ['', 'your first invoke:', `  aivault invoke ${cap}${method === 'GET' ? '' : ` --method ${method}`} --path ${path}`, 'give it to an agent (which never sees the key):', `  aivault agent create my-bot && aivault grant my-bot ${cap} && aivault serve`]) note(line);
  } finally {
    await services.close();
  }
}
