// The kept psql's framing (src/ssh/kept-psql.ts) against a stand-in that speaks psql's stdin
// protocol as status uses it (a query, a lone ";", \echo and \warn of a mark): answers one after
// another, an error psql reports (exit 1, its stderr), a psql that ends (its stderr says why), a
// time limit. The lab's status test runs it against PostgreSQL itself.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CommandTimeout } from '../../../src/ssh/connection.js';
import { KeptPsql } from '../../../src/ssh/kept-psql.js';
import { childPipe } from './child-pipe.js';

const PSQL_LIKE = [
  'while IFS= read -r l; do',
  '  case $l in',
  "    '\\echo '*) printf '%s\\n' \"${l#* }\" ;;",
  "    '\\warn '*) printf '%s\\n' \"${l#* }\" >&2 ;;",
  "    ';') ;;",
  "    fail) printf 'psql:<stdin>:1: ERROR:  relation \"x\" does not exist\\n' >&2 ;;",
  "    notice) printf 'NOTICE:  just saying\\n' >&2; printf 'n\\n' ;;",
  "    bye) printf 'psql: connection to server was lost\\n' >&2; exit 2 ;;",
  '    slow) sleep 30 ;;',
  "    *) printf 'row %s\\n' \"$l\" ;;",
  '  esac',
  'done',
].join('\n');

function psqlLike(): KeptPsql {
  return new KeptPsql(childPipe('sh', ['-c', PSQL_LIKE]));
}

describe('the kept psql', () => {
  test('answers queries one after another, asked at once or not; an error is exit 1 with its stderr, a notice is not', async () => {
    const p = psqlLike();
    const [a, b] = await Promise.all([p.query('one', 5000), p.query('two', 5000)]);
    assert.deepEqual(a, { code: 0, signal: null, stdout: 'row one\n', stderr: '' });
    assert.deepEqual(b, { code: 0, signal: null, stdout: 'row two\n', stderr: '' });
    assert.deepEqual(await p.query('fail', 5000), { code: 1, signal: null, stdout: '', stderr: 'psql:<stdin>:1: ERROR:  relation "x" does not exist\n' });
    assert.deepEqual(await p.query('notice', 5000), { code: 0, signal: null, stdout: 'n\n', stderr: 'NOTICE:  just saying\n' });
    assert.equal(p.answered, true);
    p.close();
  });

  test('a psql that ends under a query: an error with its reason, and no answer after', async () => {
    const p = psqlLike();
    await assert.rejects(p.query('bye', 5000), /psql ended: psql: connection to server was lost/);
    assert.equal(p.alive, false);
    await assert.rejects(p.query('one', 5000), /psql ended/);
  });

  test('past its time limit: a timeout, and psql is given up', async () => {
    const p = psqlLike();
    const t0 = Date.now();
    await assert.rejects(p.query('slow', 300), (e: unknown) => e instanceof CommandTimeout);
    assert.ok(Date.now() - t0 < 2000);
    assert.equal(p.alive, false);
  });
});
