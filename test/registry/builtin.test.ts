import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { neededPlaceholders } from '../../src/registry/auth-inputs.ts';
import { builtinRegistry } from '../../src/registry/registry.ts';
import { authKind, type AuthKind, type RegistryProvider } from '../../src/registry/types.ts';
import { validateProviderSet, validateProviderText } from '../../src/registry/validate.ts';

const dir = fileURLToPath(new URL('../../registry/', import.meta.url));
const files = readdirSync(dir).filter((f) => f.endsWith('.json'));

describe('built-in registry files', () => {
  const entries: { file: string; provider: RegistryProvider }[] = [];

  it('every file passes the schema and the cross-field rules', () => {
    for (const f of files) {
      const { provider, issues } = validateProviderText(readFileSync(join(dir, f), 'utf8'), f);
      assert.deepEqual(issues, [], f);
      entries.push({ file: f, provider: provider! });
    }
    assert.deepEqual(validateProviderSet(entries), []);
  });

  it('ships at least 60 providers covering every auth strategy and wildcard hosts', () => {
    assert.ok(entries.length >= 60, `only ${entries.length} providers`);
    const kinds = new Set<AuthKind>(entries.map((e) => authKind(e.provider.auth)));
    for (const k of ['header', 'query', 'path', 'basic', 'multi_header', 'multi_query', 'o_auth2', 'aws_sig_v4', 'hmac', 'mtls'] as const) {
      assert.ok(kinds.has(k), `no provider uses ${k}`);
    }
    assert.ok(entries.some((e) => e.provider.hosts.some((h) => h.startsWith('*.'))), 'no wildcard host');
  });

  it('grants narrow capabilities: no bare "/" prefix, https hosts only, every provider able to provision', () => {
    for (const { file, provider } of entries) {
      for (const cap of provider.capabilities) {
        for (const prefix of cap.allow.pathPrefixes) assert.notEqual(prefix, '/', `${file} ${cap.id}`);
        assert.ok(cap.allow.methods.length > 0);
      }
      assert.ok(provider.vaultSecrets && Object.keys(provider.vaultSecrets).length > 0, `${file} has no vaultSecrets`);
      const needed = neededPlaceholders(provider.auth).required;
      for (const placeholder of needed) assert.ok(Object.values(provider.vaultSecrets!).includes(placeholder), `${file}: ${placeholder}`);
    }
  });

  it('places the well-known credentials where the providers expect them', async () => {
    const reg = await builtinRegistry();
    assert.deepEqual(reg.provider('openai').auth, { header: { header_name: 'authorization', value_template: 'Bearer {{secret}}' } });
    assert.deepEqual(reg.provider('anthropic').auth, { header: { header_name: 'x-api-key', value_template: '{{secret}}' } });
    assert.deepEqual(reg.provider('telegram').auth, { path: { prefix_template: '/bot{{secret}}' } });
    assert.equal(reg.authKindOf('twilio'), 'basic');
    assert.equal(reg.authKindOf('trello'), 'multi_query');
    assert.equal(reg.authKindOf('datadog'), 'multi_header');
    assert.equal(reg.authKindOf('gemini'), 'query');
    assert.equal(reg.ownerOfSecret('OPENAI_API_KEY')?.provider, 'openai');
    assert.equal(reg.ownerOfSecret('TRELLO_TOKEN')?.placeholder, 'token');
    assert.equal(reg.ownerOfSecret('NOT_A_REGISTRY_NAME'), undefined);
    assert.equal(reg.capabilities.get('openai/chat-completions')?.allow.pathPrefixes[0], '/v1/chat/completions');
  });

  it('the loaded registry is frozen', async () => {
    const reg = await builtinRegistry();
    const p = reg.provider('openai');
    assert.throws(() => (p.hosts as string[]).push('evil.example'));
    assert.equal(Object.isFrozen(p.capabilities[0]!.allow), true);
  });
});
