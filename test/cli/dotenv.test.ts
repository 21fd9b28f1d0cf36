// The dotenv rules of `secrets import`, checked against the cases of the `dotenv` npm
// package's own tests (tests/.env, tests/.env-multiline, test-parse.js): where we accept a
// case we read it as dotenv does; the cases tools read differently are refused, naming the line.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseDotenv } from '../../src/cli/dotenv.ts';

const values = (text: string) => Object.fromEntries(parseDotenv(text).map((e) => [e.name, e.value]));

function refused(text: string, line: number, why: RegExp): void {
  assert.throws(() => parseDotenv(text), (e: { code?: string; message?: string }) => e.code === 'INVALID_ARGUMENT' && e.message!.startsWith(`line ${line}: `) && why.test(e.message!), JSON.stringify(text));
}

describe('dotenv rules (secrets import --file)', () => {
  it("reads dotenv's own cases as dotenv does", () => {
    const text = [
      'BASIC=basic',
      '',
      '# previous line intentionally left blank',
      'AFTER_LINE=after_line',
      'EMPTY=',
      "EMPTY_SINGLE_QUOTES=''",
      'EMPTY_DOUBLE_QUOTES=""',
      'EMPTY_BACKTICKS=``',
      "SINGLE_QUOTES='single_quotes'",
      "SINGLE_QUOTES_SPACED='    single quotes    '",
      'DOUBLE_QUOTES="double_quotes"',
      'DOUBLE_QUOTES_SPACED="    double quotes    "',
      `DOUBLE_QUOTES_INSIDE_SINGLE='double "quotes" work inside single quotes'`,
      'DOUBLE_QUOTES_WITH_NO_SPACE_BRACKET="{ port: $MONGOLAB_PORT}"',
      `SINGLE_QUOTES_INSIDE_DOUBLE="single 'quotes' work inside double quotes"`,
      "BACKTICKS_INSIDE_SINGLE='`backticks` work inside single quotes'",
      'BACKTICKS_INSIDE_DOUBLE="`backticks` work inside double quotes"',
      'BACKTICKS=`backticks`',
      'BACKTICKS_SPACED=`    backticks    `',
      'DOUBLE_QUOTES_INSIDE_BACKTICKS=`double "quotes" work inside backticks`',
      "SINGLE_QUOTES_INSIDE_BACKTICKS=`single 'quotes' work inside backticks`",
      'DOUBLE_AND_SINGLE_QUOTES_INSIDE_BACKTICKS=`double "quotes" and single \'quotes\' work inside backticks`',
      'EXPAND_NEWLINES="expand\\nnew\\nlines"',
      'DONT_EXPAND_UNQUOTED=dontexpand\\nnewlines',
      "DONT_EXPAND_SQUOTED='dontexpand\\nnewlines'",
      '# COMMENTS=work',
      'INLINE_COMMENTS=inline comments # work #very #well',
      "INLINE_COMMENTS_SINGLE_QUOTES='inline comments outside of #singlequotes' # work",
      'INLINE_COMMENTS_DOUBLE_QUOTES="inline comments outside of #doublequotes" # work',
      'INLINE_COMMENTS_BACKTICKS=`inline comments outside of #backticks` # work',
      'EQUAL_SIGNS=equals==',
      'RETAIN_INNER_QUOTES={"foo": "bar"}',
      'RETAIN_TRAILING_DQUOTE=retained"',
      "RETAIN_TRAILING_SQUOTE=retained'",
      `RETAIN_INNER_QUOTES_AS_STRING='{"foo": "bar"}'`,
      'RETAIN_INNER_QUOTES_AS_BACKTICKS=`{"foo": "bar\'s"}`',
      'TRIM_SPACE_FROM_UNQUOTED=    some spaced out string',
      'USERNAME=therealnerdybeast@example.tld',
      '    SPACED_KEY = parsed',
      'export EXPORTED=value',
    ].join('\n');
    assert.deepEqual(values(text), {
      BASIC: 'basic',
      AFTER_LINE: 'after_line',
      EMPTY: '',
      EMPTY_SINGLE_QUOTES: '',
      EMPTY_DOUBLE_QUOTES: '',
      EMPTY_BACKTICKS: '',
      SINGLE_QUOTES: 'single_quotes',
      SINGLE_QUOTES_SPACED: '    single quotes    ',
      DOUBLE_QUOTES: 'double_quotes',
      DOUBLE_QUOTES_SPACED: '    double quotes    ',
      DOUBLE_QUOTES_INSIDE_SINGLE: 'double "quotes" work inside single quotes',
      DOUBLE_QUOTES_WITH_NO_SPACE_BRACKET: '{ port: $MONGOLAB_PORT}',
      SINGLE_QUOTES_INSIDE_DOUBLE: "single 'quotes' work inside double quotes",
      BACKTICKS_INSIDE_SINGLE: '`backticks` work inside single quotes',
      BACKTICKS_INSIDE_DOUBLE: '`backticks` work inside double quotes',
      BACKTICKS: 'backticks',
      BACKTICKS_SPACED: '    backticks    ',
      DOUBLE_QUOTES_INSIDE_BACKTICKS: 'double "quotes" work inside backticks',
      SINGLE_QUOTES_INSIDE_BACKTICKS: "single 'quotes' work inside backticks",
      DOUBLE_AND_SINGLE_QUOTES_INSIDE_BACKTICKS: 'double "quotes" and single \'quotes\' work inside backticks',
      EXPAND_NEWLINES: 'expand\nnew\nlines',
      DONT_EXPAND_UNQUOTED: 'dontexpand\\nnewlines',
      DONT_EXPAND_SQUOTED: 'dontexpand\\nnewlines',
      INLINE_COMMENTS: 'inline comments',
      INLINE_COMMENTS_SINGLE_QUOTES: 'inline comments outside of #singlequotes',
      INLINE_COMMENTS_DOUBLE_QUOTES: 'inline comments outside of #doublequotes',
      INLINE_COMMENTS_BACKTICKS: 'inline comments outside of #backticks',
      EQUAL_SIGNS: 'equals==',
      RETAIN_INNER_QUOTES: '{"foo": "bar"}',
      RETAIN_TRAILING_DQUOTE: 'retained"',
      RETAIN_TRAILING_SQUOTE: "retained'",
      RETAIN_INNER_QUOTES_AS_STRING: '{"foo": "bar"}',
      RETAIN_INNER_QUOTES_AS_BACKTICKS: '{"foo": "bar\'s"}',
      TRIM_SPACE_FROM_UNQUOTED: 'some spaced out string',
      USERNAME: 'therealnerdybeast@example.tld',
      SPACED_KEY: 'parsed',
      EXPORTED: 'value',
    });
  });

  it('multiline quoted values (a PEM key), and \\n, \\r\\n and \\r line ends', () => {
    const pem = '-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAnNl1tL3QjKp3DZWM0T3u\nu4QuUoobAgMBAAE=\n-----END PUBLIC KEY-----';
    const text = `MULTI_DOUBLE_QUOTED="THIS\nIS\nA\nMULTILINE\nSTRING"\n\nMULTI_SINGLE_QUOTED='THIS\nIS\nA\nMULTILINE\nSTRING'\nMULTI_BACKTICKED=\`THIS\nIS\nA\n"MULTILINE'S"\nSTRING\`\nMULTI_PEM_DOUBLE_QUOTED="${pem}"\nAFTER=after`;
    const parsed = parseDotenv(text);
    assert.deepEqual(Object.fromEntries(parsed.map((e) => [e.name, e.value])), {
      MULTI_DOUBLE_QUOTED: 'THIS\nIS\nA\nMULTILINE\nSTRING',
      MULTI_SINGLE_QUOTED: 'THIS\nIS\nA\nMULTILINE\nSTRING',
      MULTI_BACKTICKED: 'THIS\nIS\nA\n"MULTILINE\'S"\nSTRING',
      MULTI_PEM_DOUBLE_QUOTED: pem,
      AFTER: 'after',
    });
    assert.deepEqual(parsed.map((e) => e.line), [1, 7, 12, 17, 21], 'each entry knows the line it starts on');
    const expected = { SERVER: 'localhost', PASSWORD: 'password', DB: 'tests' };
    for (const eol of ['\n', '\r\n', '\r']) assert.deepEqual(values(`SERVER=localhost${eol}PASSWORD=password${eol}DB=tests${eol}`), expected, JSON.stringify(eol));
    assert.deepEqual(values('\uFEFFBOM=value'), { BOM: 'value' });
  });

  it('refuses, naming the line, what tools read differently', () => {
    // dotenv cuts the value at a glued #, others keep it (`p#ss-w0rd` would become `p`).
    refused('A=x\nPASSWORD=p#ss-w0rd', 2, /unquoted #/);
    refused('INLINE_COMMENTS_SPACE=inline comments start with a#number sign. no space required.', 1, /unquoted #/);
    refused('A=#not-a-comment', 1, /starting with #/);
    // An unterminated quote: dotenv keeps the quote in the value (or runs on into the next entries).
    refused('A=x\nRETAIN_LEADING_DQUOTE="retained', 2, /never closed/);
    refused("RETAIN_LEADING_SQUOTE='retained\nNEXT=value\nLAST='x'", 1, /never closed/);
    refused('TOKEN=`abc', 1, /never closed/);
    // Text after the closing quote.
    refused("A='abc'def", 1, /after the closing quote/);
    refused('A="multi\nline"tail', 2, /after the closing quote/);
    // Backslashes other than \n and \r inside double quotes: dotenv keeps them, shells and others unescape.
    refused('A="a\\"b"', 1, /backslash/);
    refused('A="C:\\\\dir"', 1, /backslash/);
    refused('A="tab\\there"', 1, /backslash/);
    // Lines that are no assignment (dotenv skips them silently).
    refused('A=x\nthis is not an assignment', 2, /not NAME=value/);
    refused('KEY: value', 1, /not NAME=value/);
    // dotenv takes any \s as a blank: before a quote it still sees a quoted value, others keep the quotes.
    refused("A=x\nA_ONE=\u000b'abcdefgh'", 2, /blank other than space or tab/);
    refused("A_ONE=\u000c'abcdefgh'", 1, /blank other than space or tab/);
    refused('A_ONE=\u00a0"abcdefgh"', 1, /blank other than space or tab/);
    // dotenv does not close a single- or back-quoted value at a quote after a backslash.
    refused("A_TWO='abcdefgh\\' # x'", 1, /backslash before the closing/);
    refused('A_TWO=`abcdefgh\\` # x`', 1, /backslash before the closing/);
  });

  it('keeps what all tools agree on: single quotes are literal, no variable expansion, a blank before # starts a comment', () => {
    assert.deepEqual(values("A='C:\\dir\\n#1 $HOME'\nB=pa$$word # comment\nC= # only a comment"), { A: 'C:\\dir\\n#1 $HOME', B: 'pa$$word', C: '' });
  });
});
