import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isAivaultError, type ErrorCode } from '../../src/errors.ts';
import { classifyAddress } from '../../src/policy/address.ts';
import { assertAddressAllowed } from '../../src/policy/dns.ts';
import { hostMatches } from '../../src/policy/hosts.ts';
import { resolveTarget, type TargetPolicy, type TargetRequest } from '../../src/policy/target.ts';

const policy: TargetPolicy = { hosts: ['api.example.com', '*.shop.example.com', 'api.example.com:8443'], pathPrefixes: ['/v1/users'], allowHttp: false };

function denied(request: TargetRequest, code: ErrorCode, p: TargetPolicy = policy) {
  assert.throws(() => resolveTarget(p, request), (e) => isAivaultError(e, code), JSON.stringify(request));
}

describe('target resolution (attacker side)', () => {
  it('builds the URL from host, path and query, encoding query values', () => {
    const t = resolveTarget(policy, { host: 'api.example.com', path: '/v1/users/42', query: [['q', 'a b&c=d'], ['x', '1']] });
    assert.equal(t.url.href, 'https://api.example.com/v1/users/42?q=a+b%26c%3Dd&x=1');
    assert.equal(t.port, 443);
  });

  it('treats mixed case and a trailing dot as the same host', () => {
    assert.equal(resolveTarget(policy, { host: 'API.Example.COM.', path: '/v1/users' }).hostname, 'api.example.com.');
    assert.equal(hostMatches('api.example.com', 'API.EXAMPLE.COM.', 443, 443), true);
  });

  it('wildcards match exactly one label', () => {
    assert.equal(resolveTarget(policy, { host: 'acme.shop.example.com', path: '/v1/users' }).hostname, 'acme.shop.example.com');
    denied({ host: 'a.b.shop.example.com', path: '/v1/users' }, 'HOST_NOT_ALLOWED');
    denied({ host: 'shop.example.com', path: '/v1/users' }, 'HOST_NOT_ALLOWED');
  });

  it('refuses other hosts, look-alikes and ports', () => {
    for (const host of ['evil.example.com', 'api.example.com.evil.com', 'evilapi.example.com', 'api.example.com:444', 'api.example.com:80', '127.0.0.1', '2130706433', '0x7f.1', '[::1]']) {
      denied({ host, path: '/v1/users' }, 'HOST_NOT_ALLOWED');
    }
    assert.equal(resolveTarget(policy, { host: 'api.example.com:8443', path: '/v1/users' }).port, 8443);
  });

  it('refuses userinfo, fragments, odd schemes and plain http', () => {
    denied({ url: 'https://user:pw@api.example.com/v1/users' }, 'MALFORMED_URL');
    denied({ url: 'https://api.example.com@evil.com/v1/users' }, 'MALFORMED_URL');
    denied({ url: 'https://api.example.com/v1/users#x' }, 'MALFORMED_URL');
    denied({ url: 'ftp://api.example.com/v1/users' }, 'MALFORMED_URL');
    denied({ url: 'http://api.example.com/v1/users' }, 'INSECURE_SCHEME');
    denied({ host: 'api.example.com/v1', path: '/v1/users' }, 'MALFORMED_URL');
    denied({ host: 'api.example.com\\@evil.com', path: '/v1/users' }, 'MALFORMED_URL');
  });

  it('refuses paths outside the prefix and paths the URL parser would rewrite', () => {
    denied({ host: 'api.example.com', path: '/v1/users-admin' }, 'PATH_NOT_ALLOWED');
    denied({ host: 'api.example.com', path: '/v2/users' }, 'PATH_NOT_ALLOWED');
    denied({ url: 'https://api.example.com/v1/users/../admin' }, 'MALFORMED_PATH');
    denied({ url: 'https://api.example.com/v1/users/%2e%2e/admin' }, 'MALFORMED_PATH');
    denied({ url: 'https://api.example.com/v1/users\\..\\admin' }, 'MALFORMED_PATH');
  });

  it('needs a host when several are allowed, and defaults the path to a single prefix', () => {
    denied({}, 'HOST_REQUIRED');
    const single = resolveTarget({ hosts: ['api.example.com'], pathPrefixes: ['/v1/users'], allowHttp: false }, {});
    assert.equal(single.url.href, 'https://api.example.com/v1/users');
  });

  it('allows http only when the owner allowed it', () => {
    const t = resolveTarget({ ...policy, allowHttp: true }, { host: 'api.example.com', path: '/v1/users' });
    assert.equal(t.url.protocol, 'http:');
    assert.equal(t.port, 80);
  });
});

describe('address classification (SSRF)', () => {
  // Cases from the classification tests of stripe/smokescreen (pkg/smokescreen: ip_policy_test.go,
  // smokescreen_test.go) and Infisical agent-vault (netguard), plus the forms of issue 20.
  const cases: Array<[string, 'private' | 'metadata' | 'never' | 'public']> = [
    ['127.0.0.1', 'private'], ['127.255.255.254', 'private'], ['10.0.0.1', 'private'], ['10.1.0.1', 'private'], ['172.16.0.1', 'private'], ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'], ['169.254.1.1', 'private'], ['169.254.169.254', 'metadata'], ['169.254.170.2', 'metadata'], ['100.64.0.1', 'private'], ['100.100.100.200', 'metadata'],
    ['::1', 'private'], ['fe80::1', 'private'], ['fc00::1', 'private'], ['fd12:3456::1', 'private'], ['fd00::5', 'private'], ['::ffff:127.0.0.1', 'private'], ['::ffff:10.0.0.5', 'private'],
    ['::ffff:169.254.169.254', 'metadata'], ['::ffff:a9fe:a9fe', 'metadata'], ['64:ff9b::1', 'never'], ['64:ff9b::7f00:1', 'private'], ['fd00:ec2::254', 'metadata'], ['fe80::1%eth0', 'private'],
    ['2002:7f00:1::', 'private'], ['2001:db8::1', 'private'], ['192.0.2.1', 'private'], ['198.18.0.1', 'private'],
    // Metadata inside every IPv6 form that embeds an IPv4 address: refused even with the opt-in.
    ['64:ff9b::a9fe:a9fe', 'metadata'], ['64:ff9b::169.254.169.254', 'metadata'], ['64:ff9b:1::a9fe:a9fe', 'metadata'], ['2002:a9fe:a9fe::1', 'metadata'],
    ['::a9fe:a9fe', 'metadata'], ['::169.254.169.254', 'metadata'], ['2001:0:a9fe:a9fe::1', 'metadata'], ['2001:0:4136:e378:8000:63bf:5601:5601', 'metadata'],
    ['64:ff9b::6464:64c8', 'metadata'], ['::ffff:0:a9fe:a9fe', 'metadata'], ['::ffff:0:a00:1', 'private'],
    // The third attack: the local-use NAT64 /48 cut at /48, /56 or /64 puts the IPv4 address elsewhere
    // (RFC 6052 §2.2); the rest of 64:ff9b::/32; ISATAP interface identifiers; newer special ranges.
    ['64:ff9b:1:a9fe:a9:fe00:808:808', 'metadata'], ['64:ff9b:1:a9:fe:a9fe:808:808', 'metadata'], ['64:ff9b:1:0:64:6464:c808:808', 'metadata'],
    ['64:ff9b:1:a9fe:aa:200:808:808', 'metadata'], ['64:ff9b:1::808:808', 'never'], ['64:ff9b:1:ffff:ff:ff00:808:808', 'never'], ['64:ff9b:1:e000:0:100:808:808', 'never'],
    ['64:ff9b::ffff:7f00:1', 'never'], ['64:ff9b::1:0:a9fe:a9fe', 'metadata'], ['64:ff9b::808:808', 'private'],
    ['2600::5efe:7f00:1', 'private'], ['2600::200:5efe:a9fe:a9fe', 'metadata'], ['2600::5efe:808:808', 'public'], ['3fff::1', 'private'], ['2001:10::1', 'private'],
    // Where no upstream lives: refused even with the opt-in.
    ['0.0.0.0', 'never'], ['0.1.2.3', 'never'], ['255.255.255.255', 'never'], ['224.0.0.1', 'never'], ['239.255.255.250', 'never'], ['240.0.0.1', 'never'],
    ['::', 'never'], ['ff02::1', 'never'], ['ff05::2', 'never'], ['::ffff:0.0.0.0', 'never'], ['::ffff:255.255.255.255', 'never'], ['64:ff9b::e000:1', 'never'], ['2002:e000:1::', 'never'],
    ['93.184.216.34', 'public'], ['8.8.8.8', 'public'], ['1.1.1.1', 'public'], ['2606:4700:4700::1111', 'public'], ['::ffff:8.8.8.8', 'public'], ['172.32.0.1', 'public'], ['100.128.0.1', 'public'],
  ];
  for (const [address, verdict] of cases) {
    it(`${address} is ${verdict}`, () => assert.equal(classifyAddress(address), verdict));
  }
  it('the owner\'s opt-in unlocks private addresses, never metadata or unroutable ones (embedded or not)', () => {
    for (const [address, verdict] of cases) {
      const allowed = (() => {
        try {
          assertAddressAllowed(address, { allowPrivateNetwork: true });
          return true;
        } catch (err) {
          assert.ok(isAivaultError(err, 'PRIVATE_ADDRESS_BLOCKED'));
          return false;
        }
      })();
      assert.equal(allowed, verdict === 'private' || verdict === 'public', address);
    }
  });
});
