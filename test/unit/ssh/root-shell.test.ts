// The kept root shell (src/ssh/root-shell.ts) on a local bash: scripts one after another in the
// same shell, stdout and stderr exactly as written (no trailing newline added or taken), exit
// codes, lines that look like its marks, a time limit (reported at once, the shell given up and
// the script killed on the host), and a shell that never says it is ready.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, test } from 'node:test';
import { CommandTimeout } from '../../../src/ssh/connection.js';
import type { ProcessPipe } from '../../../src/ssh/kept-process.js';
import { readAnswer, RootShell, rootShellCommand } from '../../../src/ssh/root-shell.js';

function localPipe(argv: string[]): { pipe: ProcessPipe; pid: number; exited: Promise<void> } {
  const child = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  return {
    pid: child.pid!,
    exited,
    pipe: {
      write: (t) => child.stdin.write(t),
      onStdout: (l) => child.stdout.on('data', l),
      onClose: (l) => child.on('close', l),
      close: () => child.stdin.end(),
    },
  };
}

async function started() {
  const { argv, ready } = rootShellCommand();
  const p = localPipe(argv);
  const shell = await RootShell.start(p.pipe, ready);
  assert.ok(shell, 'the shell says it is ready');
  return { shell, ...p };
}

describe('the kept root shell', () => {
  test('runs scripts one after another in the same shell, output and exit codes exact', async () => {
    const { shell, pid, exited } = await started();
    const a = await shell.run(`printf 'no newline'; printf 'err\\n' >&2; echo "$PPID" >/dev/null; exit 3`, 5000);
    assert.deepEqual(a, { code: 3, signal: null, stdout: 'no newline', stderr: 'err\n' });
    // The script's parent chain leads back to the same shell both times.
    const ppid = async () => (await shell.run(`ps -o ppid= -p $PPID`, 5000)).stdout.trim();
    assert.equal(await ppid(), String(pid));
    assert.equal(await ppid(), String(pid));
    // Lines that are marks of another request, a quote, a backslash, an empty line and UTF-8 pass as they are.
    const tricky = `pgha-000000000000 out\n\n'"\\ é\n`;
    const b = await shell.run(`printf '%s' '${tricky.replace(/'/g, `'\\''`)}'`, 5000);
    assert.equal(b.stdout, tricky);
    assert.equal(b.code, 0);
    shell.close();
    await exited;
    await assert.rejects(shell.run('true', 1000), /ended/);
  });

  test('past its time limit: a timeout at once, the shell given up, the script killed by the host', async () => {
    const { shell, exited } = await started();
    const t0 = Date.now();
    await assert.rejects(shell.run('sleep 30', 300), (e: unknown) => e instanceof CommandTimeout);
    assert.ok(Date.now() - t0 < 2000, 'reported at its limit, not when the host kills it');
    assert.equal(shell.alive, false);
    // timeout on the host ends the sleep a second after the limit, then the shell reads its end.
    await exited;
    assert.ok(Date.now() - t0 < 8000, `the shell ended within ${Date.now() - t0} ms`);
  });

  test('a shell that ends before it is ready (sudo refused) is no shell', async () => {
    const p = localPipe(['sh', '-c', 'echo "sudo: a password is required" >&2; exit 1']);
    assert.equal(await RootShell.start(p.pipe, 'never-said'), undefined);
  });

  test('an answer is read only once its end mark is there', () => {
    const m = 'pgha-abcdefabcdef';
    const whole = `${m} out\nhello\n\n${m} err\noops\n${m} end 7\nnext`;
    assert.deepEqual(readAnswer(whole, m), { raw: { code: 7, signal: null, stdout: 'hello\n', stderr: 'oops' }, rest: 'next' });
    assert.equal(readAnswer(whole.slice(0, whole.indexOf(' end 7')), m), undefined);
  });
});
