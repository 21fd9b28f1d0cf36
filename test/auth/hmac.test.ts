import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { hmacStrategy } from '../../src/auth/hmac.ts';
import type { OutboundRequest } from '../../src/auth/types.ts';
import type { HmacConfig } from '../../src/registry/types.ts';
import { readAll, testBroker, type TestBroker } from '../helpers/broker.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

// RFC 4231 test cases whose keys are valid UTF-8 (secrets are stored as text).
const VECTORS = [
  { name: 'RFC 4231 case 1', key: Buffer.alloc(20, 0x0b).toString('latin1'), data: Buffer.from('Hi There'),
    sha256: 'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7',
    sha512: '87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854' },
  { name: 'RFC 4231 case 2', key: 'Jefe', data: Buffer.from('what do ya want for nothing?'),
    sha256: '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
    sha512: '164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737' },
  { name: 'RFC 4231 case 4', key: Buffer.from(Array.from({ length: 25 }, (_, i) => i + 1)).toString('latin1'), data: Buffer.alloc(50, 0xcd),
    sha256: '82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b',
    sha512: 'b0ba465637458c6990e5a8c5f61d4af7e576d97ff94b872de76f8050361ee3dba91ca5c11aa25eb4d679275cc5788063a5f19741120c4f2de2adebeb10a298dd' },
];

function request(body: Buffer): OutboundRequest {
  return { method: 'POST', url: new URL('https://api.example.com/hook'), headers: new Map(), body };
}

describe('hmac strategy', () => {
  for (const v of VECTORS) {
    for (const algorithm of ['sha256', 'sha512'] as const) {
      it(`${v.name}, ${algorithm}`, () => {
        const req = request(v.data);
        hmacStrategy({ algorithm, header_name: 'X-Signature', value_template: `${algorithm}={{signature}}` }).apply(req, new Map([['secret', v.key]]));
        assert.equal(req.headers.get('x-signature'), `${algorithm}=${v[algorithm]}`);
      });
    }
  }

  it('signs timestamp, method, path and query and body in the declared order, with key-id headers', () => {
    const config: HmacConfig = {
      algorithm: 'sha256', header_name: 'api-signature', value_template: '{{signature}}', encoding: 'base64',
      signed: ['timestamp', 'method', 'path_and_query', 'body'], separator: '|', timestamp_header: 'api-expires', timestamp_format: 'unix', timestamp_offset_seconds: 60,
      extra_headers: [{ header_name: 'api-key', value_template: '{{key_id}}' }],
    };
    const req: OutboundRequest = { method: 'post', url: new URL('https://x.example.com/api/v1/order?symbol=XBT'), headers: new Map(), body: Buffer.from('{"qty":1}') };
    const injected = hmacStrategy(config, () => 1_700_000_000_000).apply(req, new Map([['secret', 'k3y'], ['key_id', 'id-123']])) as string[];
    const expected = createHmac('sha256', 'k3y').update('1700000060|POST|/api/v1/order?symbol=XBT|{"qty":1}').digest('base64');
    assert.equal(req.headers.get('api-signature'), expected);
    assert.equal(req.headers.get('api-expires'), '1700000060');
    assert.equal(req.headers.get('api-key'), 'id-123');
    assert.deepEqual(injected, ['id-123']);
  });
});

describe('hmac end to end against a verifying upstream', () => {
  let up: Upstream;
  let t: TestBroker;
  const secret = 'whsec-0123456789abcdef';
  before(async () => {
    up = await startUpstream();
    t = await testBroker();
    up.handle('/api/v1/order', (req, res, body) => {
      const expires = String(req.headers['api-expires']);
      const expected = createHmac('sha256', secret).update(`${req.method}${req.url}${expires}${body.toString('utf8')}`).digest();
      const got = Buffer.from(String(req.headers['api-signature']), 'hex');
      const ok = got.length === expected.length && timingSafeEqual(got, expected) && req.headers['api-key'] === 'key-id-42' && Number(expires) > Date.now() / 1000;
      res.statusCode = ok ? 200 : 401;
      res.end(JSON.stringify({ ok }));
    });
  });
  after(async () => {
    await t.close();
    await up.close();
  });

  it('the upstream accepts the signature (BitMEX-style scheme) and agent copies of the headers are dropped', async () => {
    const cap = await t.custom({
      name: 'exchange',
      auth: { hmac: { algorithm: 'sha256', header_name: 'api-signature', value_template: '{{signature}}', signed: ['method', 'path_and_query', 'timestamp', 'body'], timestamp_header: 'api-expires', timestamp_format: 'unix', timestamp_offset_seconds: 60, extra_headers: [{ header_name: 'api-key', value_template: '{{key_id}}' }] } },
      secrets: { secret, key_id: 'key-id-42' },
      hosts: [up.host],
      paths: ['/api/v1/order'],
    });
    const res = await t.broker.invoke({ capability: cap, method: 'POST', path: '/api/v1/order', query: [['symbol', 'XBTUSD']], headers: [['api-signature', 'forged'], ['api-key', 'other']], body: Buffer.from('{"orderQty":1}') });
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(await readAll(res.body)), { ok: true });
  });
});
