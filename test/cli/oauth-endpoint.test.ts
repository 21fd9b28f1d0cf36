import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assertNoLeak, canary, tempVault, type TempVault } from '../helpers/cli.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

describe('aivault oauth login and endpoint set (CLI)', () => {
  let v: TempVault;
  let up: Upstream;
  const refresh = canary('RT');
  const clientSecret = canary('CS');
  before(async () => {
    v = await tempVault();
    up = await startUpstream();
    up.handle('/api/token', (_req, res, body) => {
      const ok = new URLSearchParams(body.toString()).get('refresh_token') === refresh;
      res.setHeader('content-type', 'application/json');
      res.statusCode = ok ? 200 : 400;
      res.end(JSON.stringify(ok ? { access_token: 'at-from-standin', token_type: 'bearer', expires_in: 600 } : { error: 'invalid_grant', error_description: `bad ${refresh}` }));
    });
  });
  after(async () => {
    v.cleanup();
    await up.close();
  });

  it('seeds client id, secret and refresh token; the provider becomes ready and invokes through the override', async () => {
    const secretFile = join(v.dir, '..', 'client-secret');
    writeFileSync(secretFile, `${clientSecret}\n`);
    const login = await v.cli(['oauth', 'login', 'spotify', '--client-id', 'my-client', '--client-secret-file', secretFile, '--json'], { input: `${refresh}\n` });
    assert.equal(login.code, 0, login.stderr);
    assert.deepEqual(JSON.parse(login.stdout).secrets, { SPOTIFY_CLIENT_ID: 'created', SPOTIFY_CLIENT_SECRET: 'created', SPOTIFY_REFRESH_TOKEN: 'created' });
    const set = await v.cli(['endpoint', 'set', 'spotify', '--map', `api.spotify.com=${up.host}`, '--token-endpoint', `http://${up.host}/api/token`, '--allow-http', '--allow-private-network']);
    assert.equal(set.code, 0, set.stderr);
    const described = JSON.parse((await v.cli(['capability', 'describe', 'spotify/me', '--json'])).stdout) as { ready: boolean; endpointOverrides: Record<string, string> };
    assert.equal(described.ready, true);
    assert.deepEqual(described.endpointOverrides, { 'api.spotify.com': up.host });
    // People read the override too, not only --json (the docs say describe shows it).
    const shown = await v.cli(['capability', 'describe', 'spotify/me']);
    assert.match(shown.stdout, new RegExp(`^redirected: +api\\.spotify\\.com -> ${up.host.replace(/\./g, '\\.')}$`, 'm'));
    const r = await v.cli(['invoke', 'spotify/me', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(JSON.parse(r.stdout).body).headers.authorization, 'Bearer [REDACTED]');
    assert.equal(up.received.at(-1)!.headers.authorization, 'Bearer at-from-standin');
    for (const out of [login.stdout, login.stderr, set.stdout, r.stdout, r.stderr]) {
      assertNoLeak(out, refresh, 'CLI output');
      assertNoLeak(out, clientSecret, 'CLI output');
    }
  });

  it('refuses to redirect a host the provider does not have, or plain http without --allow-http', async () => {
    const bad = await v.cli(['endpoint', 'set', 'spotify', '--map', `evil.example.com=${up.host}`, '--json']);
    assert.equal(JSON.parse(bad.stderr).error.code, 'INVALID_ARGUMENT');
    const http = await v.cli(['endpoint', 'set', 'spotify', '--token-endpoint', `http://${up.host}/api/token`, '--json']);
    assert.equal(JSON.parse(http.stderr).error.code, 'INSECURE_SCHEME');
  });

  it('a failed refresh exits 8 with OAUTH_REFRESH_FAILED and the error code, never the endpoint body', async () => {
    const login = await v.cli(['oauth', 'login', 'dropbox', '--client-id', 'dbx-client-id', '--client-secret-file', join(v.dir, '..', 'client-secret')], { input: 'wrong-refresh-token\n' });
    assert.equal(login.code, 0, login.stderr);
    const set = await v.cli(['endpoint', 'set', 'dropbox', '--map', `api.dropboxapi.com=${up.host}`, '--token-endpoint', `http://${up.host}/api/token`, '--allow-http', '--allow-private-network']);
    assert.equal(set.code, 0, set.stderr);
    const before = up.received.length;
    const r = await v.cli(['invoke', 'dropbox/users', '--method', 'POST', '--path', '/2/users/get_current_account', '--json']);
    assert.equal(r.code, 8);
    const error = JSON.parse(r.stderr).error as { code: string; message: string };
    assert.equal(error.code, 'OAUTH_REFRESH_FAILED');
    assert.match(error.message, /invalid_grant/);
    assert.doesNotMatch(error.message, /bad /);
    assertNoLeak(r.stderr + r.stdout, refresh, 'invoke output');
    assert.equal(up.received.length, before + 1, 'only the token request was made');
  });

  it('gemini: the API key until an OAuth session is stored, then the session (its alternative, priority 10); the audit names the choice', async () => {
    const before = JSON.parse((await v.cli(['capability', 'describe', 'gemini/models', '--json'])).stdout) as { missingSecrets: string[] };
    assert.deepEqual(before.missingSecrets, ['GEMINI_API_KEY'], 'with nothing stored, the main credential is what is missing');
    const apiKey = canary('GEMINIKEY');
    assert.equal((await v.cli(['secrets', 'create', '--name', 'GEMINI_API_KEY', '--value', apiKey])).code, 0);
    const set = await v.cli(['endpoint', 'set', 'gemini', '--map', `generativelanguage.googleapis.com=${up.host}`, '--token-endpoint', `http://${up.host}/api/token`, '--allow-http', '--allow-private-network']);
    assert.equal(set.code, 0, set.stderr);
    const withKey = await v.cli(['invoke', 'gemini/models', '--path', '/v1beta/models']);
    assert.equal(withKey.code, 0, withKey.stderr);
    assert.equal(new URL(up.received.at(-1)!.url, 'http://x').searchParams.get('key'), apiKey);
    assert.equal(up.received.at(-1)!.headers.authorization, undefined);

    const shown = JSON.parse((await v.cli(['registry', 'show', 'gemini', '--json'])).stdout) as { alternatives: Array<{ id: string; auth: string; priority: number }> };
    assert.deepEqual(shown.alternatives.map((a) => [a.id, a.auth, a.priority]), [['oauth', 'o_auth2', 10]]);
    const login = await v.cli(['oauth', 'login', 'gemini', '--client-id', 'gem-client', '--client-secret-file', join(v.dir, '..', 'client-secret'), '--json'], { input: `${refresh}\n` });
    assert.equal(login.code, 0, login.stderr);
    assert.deepEqual(JSON.parse(login.stdout).secrets, { GEMINI_OAUTH_CLIENT_ID: 'created', GEMINI_OAUTH_CLIENT_SECRET: 'created', GEMINI_OAUTH_REFRESH_TOKEN: 'created' });
    const withSession = await v.cli(['invoke', 'gemini/models', '--path', '/v1beta/models', '--json']);
    assert.equal(withSession.code, 0, withSession.stderr);
    const sent = up.received.at(-1)!;
    assert.equal(sent.headers.authorization, 'Bearer at-from-standin');
    assert.equal(new URL(sent.url, 'http://x').searchParams.get('key'), null, 'the API key is not sent with the session');
    const audit = JSON.parse((await v.cli(['audit', 'list', '--json'])).stdout) as Array<{ action: string; decision: string; target: string | null }>;
    assert.deepEqual(audit.filter((r) => r.action === 'invoke' && r.decision === 'allow').slice(-2).map((r) => r.target), ['credential:gemini', 'credential:gemini:oauth']);
    for (const out of [withKey.stdout, withKey.stderr, withSession.stdout, login.stdout]) assertNoLeak(out, apiKey, 'CLI output');
  });
});
