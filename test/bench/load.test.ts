// bench:gateway reads wrk's summary: units, trailing spaces and errors must not slip past it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseWrk } from '../../bench/load.ts';

const summary = (p99: string, extra = '') => `Running 1s test @ http://127.0.0.1:1/v1/models
  1 threads and 32 connections
  Latency Distribution
     50%  115.22us
     75%  462.32ms
     90%  753.45ms
     99%  ${p99}
  96 requests in 1.04s, 37.97KB read
${extra}Requests/sec:     91.92
Transfer/sec:     36.35KB
`;

describe('parseWrk', () => {
  it('reads requests, req/s and p50/p99 in milliseconds, whatever unit wrk chose (and its trailing space)', () => {
    assert.deepEqual(parseWrk(summary('1.01s ')), { requests: 96, rps: 91.92, p50: 0.11522, p99: 1010 });
  });

  it('fails a run that had answers other than 2xx or socket errors', () => {
    assert.throws(() => parseWrk(summary('2.00ms', '  Non-2xx or 3xx responses: 6798\n')), /Non-2xx or 3xx responses: 6798/);
    assert.throws(() => parseWrk(summary('2.00ms', '  Socket errors: connect 0, read 3, write 0, timeout 0\n')), /Socket errors/);
  });
});
