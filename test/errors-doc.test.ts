// docs/errors.md documents every error code, under the heading its problem type names, and is
// exactly what scripts/errors-doc.ts renders from the code table: it cannot drift.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ERROR_CODES, PROBLEM_TYPE_BASE, problemType, type ErrorCode } from '../src/errors.ts';
import { ERRORS_DOC, renderErrorsDoc } from '../scripts/errors-doc.ts';

describe('docs/errors.md', () => {
  const doc = readFileSync(ERRORS_DOC, 'utf8');

  it('has a section for every code, headed by its problem type, and none for a code that does not exist', () => {
    const headings = [...doc.matchAll(/^### (.+)$/gm)].map((m) => m[1]);
    const expected = (Object.keys(ERROR_CODES) as ErrorCode[]).map((c) => problemType(c).slice(PROBLEM_TYPE_BASE.length));
    assert.deepEqual(headings, expected);
  });

  it('is what the code table renders (run `node scripts/errors-doc.ts` after changing a code)', () => {
    assert.equal(doc, renderErrorsDoc());
  });
});
