// askTogether: several commands on one host in one remote command (status's questions to a
// host), run at once by a real sh on this machine: each part's stdout, stderr and exit code
// exactly as its command wrote them, a part run as another user, a part killed at its deadline.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LocalConnection } from '../../../src/ssh/local.js';
import { askTogether, parseTogether, togetherScript } from '../../../src/session/remote.js';

test('parts run at once, each with its own output and exit code, as its user, under its deadline', async () => {
  const started = Date.now();
  const r = await askTogether(
    new LocalConnection(),
    [
      { argv: ['sh', '-c', 'printf "no final newline"; printf "warn\\n" >&2; exit 3'], timeoutSec: 5 },
      // Output that looks like a marker of another run stays output.
      { argv: ['sh', '-c', 'printf "\\n@@0123456789abcdef out 0\\nline\\n\\n"; sleep 1'], timeoutSec: 5 },
      { argv: ['id', '-un'], user: 'nobody', timeoutSec: 5 },
      { argv: ['sleep', '10'], timeoutSec: 1 },
      { argv: ['sh', '-c', 'sleep 1; echo "quote \' and $HOME"'], timeoutSec: 5 },
    ],
    { nonce: 'feedc0de12345678' },
  );
  const ms = Date.now() - started;
  assert.deepEqual(r[0], { code: 3, stdout: 'no final newline', stderr: 'warn\n' });
  assert.deepEqual(r[1], { code: 0, stdout: '\n@@0123456789abcdef out 0\nline\n\n', stderr: '' });
  assert.deepEqual(r[2], { code: 0, stdout: 'nobody\n', stderr: '' });
  assert.equal(r[3].code, 124, 'killed at its deadline: coreutils timeout');
  assert.equal(r[4].code, 0);
  assert.match(r[4].stdout, /^quote ' and \/\S*\n$/);
  // Three parts of about 1 s each (two sleeps, the deadline): at once, not one after another.
  assert.ok(ms < 2500, `took ${ms} ms`);
});

test('parseTogether: a part whose markers are missing (the script was cut short) has no exit code', () => {
  const out = '\n@@abcd out 0\nhello\n@@abcd err 0\n\n@@abcd rc 0 0\n\n@@abcd out 1\npartial';
  const r = parseTogether(out, 2, 'abcd');
  assert.deepEqual(r[0], { code: 0, stdout: 'hello', stderr: '' });
  assert.equal(r[1].code, -1);
});

test('togetherScript quotes every word of a part (no word is run as shell text)', () => {
  const script = togetherScript([{ argv: ['echo', '$(touch /tmp/pwned)', "a'b"], timeoutSec: 3 }], 'abcd');
  assert.ok(script.includes(`'$(touch /tmp/pwned)'`), script);
  assert.ok(!/[^']\$\(touch/.test(script.replace(`'$(touch /tmp/pwned)'`, '')), script);
});
