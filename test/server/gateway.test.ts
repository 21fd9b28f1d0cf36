// The real OpenAI SDK, unmodified, with its base URL at the daemon's gateway and an agent
// token as its API key, against a loopback stand-in of the OpenAI API.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { isAivaultError } from '../../src/errors.ts';
import { createAgentClient } from '../../src/sdk/agent-client.ts';
import { CLI, canary, tempVault, type TempVault, CHILD_ENV } from '../helpers/cli.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

describe('gateway for unmodified SDKs (openai npm package)', () => {
  let v: TempVault;
  let up: Upstream;
  let daemon: ChildProcess;
  let baseURL: string;
  let token: string;
  const realKey = canary('sk-real');

  before(async () => {
    v = await tempVault();
    up = await startUpstream();
    up.handle('/v1/chat/completions', (req, res, body) => {
      if (req.headers.authorization !== `Bearer ${realKey}`) {
        res.statusCode = 401;
        res.setHeader('content-type', 'application/json');
        return void res.end(JSON.stringify({ error: { message: 'Incorrect API key provided', type: 'invalid_request_error', code: 'invalid_api_key' } }));
      }
      const { stream, messages } = JSON.parse(body.toString()) as { stream?: boolean; messages: Array<{ content: string }> };
      const base = { id: 'chatcmpl-1', created: 1_700_000_000, model: 'gpt-test' };
      if (!stream) {
        res.setHeader('content-type', 'application/json');
        return void res.end(JSON.stringify({ ...base, object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: `echo: ${messages[0]!.content}` }, finish_reason: 'stop', logprobs: null }], usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 } }));
      }
      res.setHeader('content-type', 'text/event-stream');
      for (const piece of ['Hel', 'lo', '!']) res.write(`data: ${JSON.stringify({ ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: piece }, finish_reason: null }] })}\n\n`);
      res.end('data: [DONE]\n\n');
    });
    const cli = async (args: string[], input?: string) => {
      const r = await v.cli(args, input !== undefined ? { input } : {});
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };
    await cli(['secrets', 'create', '--name', 'OPENAI_API_KEY', '--value-stdin'], realKey);
    await cli(['endpoint', 'set', 'openai', '--map', `api.openai.com=${up.host}`, '--allow-http', '--allow-private-network']);
    token = (JSON.parse(await cli(['agent', 'create', 'sdk-bot', '--json'])) as { token: string }).token;
    await cli(['grant', 'sdk-bot', 'openai/chat-completions']);
    daemon = spawn(process.execPath, [CLI, 'serve', '--listen', '127.0.0.1:0'], { env: { ...CHILD_ENV, ...v.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const first = await new Promise<string>((resolve) => daemon.stdout!.once('data', (d: Buffer) => resolve(String(d))));
    baseURL = `${(JSON.parse(first) as { listening: { url: string } }).listening.url}/gw/openai/v1`;
  });
  after(async () => {
    daemon.kill('SIGTERM');
    await new Promise((r) => daemon.once('exit', r));
    await up.close();
    v.cleanup();
  });

  it('a chat completion: the SDK holds only the agent token, the stand-in receives the real key', async () => {
    const client = new OpenAI({ apiKey: token, baseURL, maxRetries: 0 });
    const completion = await client.chat.completions.create({ model: 'gpt-test', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(completion.choices[0]!.message.content, 'echo: hi');
    const seen = up.received.at(-1)!;
    assert.equal(seen.headers.authorization, `Bearer ${realKey}`);
    assert.equal(JSON.stringify(seen.headers).includes(token), false, 'the agent token never reaches the upstream');
  });

  it('a streamed chat completion arrives chunk by chunk', async () => {
    const client = new OpenAI({ apiKey: token, baseURL, maxRetries: 0 });
    const stream = await client.chat.completions.create({ model: 'gpt-test', messages: [{ role: 'user', content: 'hi' }], stream: true });
    const pieces: string[] = [];
    for await (const chunk of stream) pieces.push(chunk.choices[0]?.delta?.content ?? '');
    assert.deepEqual(pieces, ['Hel', 'lo', '!']);
  });

  it("the SDK client's fetch drops in as the OpenAI SDK's fetch, with the SDK's own base URL", async () => {
    const agent = createAgentClient({ url: baseURL.replace(/\/gw\/openai\/v1$/, ''), token });
    try {
      const client = new OpenAI({ apiKey: 'not-a-real-key', fetch: agent.fetch, maxRetries: 0 });
      const completion = await client.chat.completions.create({ model: 'gpt-test', messages: [{ role: 'user', content: 'via fetch' }] });
      assert.equal(completion.choices[0]!.message.content, 'echo: via fetch');
      const seen = up.received.at(-1)!;
      assert.equal(seen.headers.authorization, `Bearer ${realKey}`);
      assert.equal(JSON.stringify(seen.headers).includes('not-a-real-key'), false);
      await assert.rejects(agent.fetch('https://api.anthropic.com/v1/messages', { method: 'POST', body: '{}' }), (e) => isAivaultError(e, 'CAPABILITY_NOT_GRANTED'));
    } finally {
      await agent.close();
    }
  });

  it('a wrong agent token is 401, and a call outside the grant is 403, before anything goes upstream', async () => {
    const before = up.received.length;
    await assert.rejects(new OpenAI({ apiKey: 'avt_wrong', baseURL, maxRetries: 0 }).chat.completions.create({ model: 'x', messages: [] }), (e) => e instanceof OpenAI.AuthenticationError);
    // The SDK shows aivault's reason as it shows OpenAI's own: error.message, error.type, error.code.
    await assert.rejects(new OpenAI({ apiKey: token, baseURL, maxRetries: 0 }).embeddings.create({ model: 'x', input: 'y' }), (e) => {
      assert.ok(e instanceof OpenAI.PermissionDeniedError);
      assert.deepEqual([e.type, e.code], ['aivault_error', 'CAPABILITY_NOT_GRANTED']);
      assert.match(e.message, /^403 no granted openai capability allows POST \/v1\/embeddings/);
      return true;
    });
    // A raw dot segment (sent as written, not normalised by a client) is refused, never resolved.
    const { request: httpRequest } = await import('node:http');
    const target = new URL(baseURL);
    const status = await new Promise<{ code: number; error: string }>((resolve, reject) => {
      const req = httpRequest({ host: target.hostname, port: target.port, method: 'POST', path: `${target.pathname}/chat/completions/../../embeddings`, headers: { authorization: `Bearer ${token}` } }, (res) => {
        res.resume();
        resolve({ code: res.statusCode!, error: String(res.headers['x-aivault-error']) });
      });
      req.on('error', reject);
      req.end('{}');
    });
    assert.deepEqual(status, { code: 403, error: 'MALFORMED_PATH' });
    assert.equal(up.received.length, before);
  });
});
