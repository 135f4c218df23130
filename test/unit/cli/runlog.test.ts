// The per-run log: what was printed, every command run on a host with its exit code and output,
// secrets masked, file contents and stdin never written; default files under the state dir,
// the oldest pruned.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { defaultLogDir, defaultLogPath, KEEP_DEFAULT_LOGS, RunLog } from '../../../src/cli/runlog.js';
import { Reporter } from '../../../src/engine/reporter.js';
import { LocalConnection, localTarget } from '../../../src/ssh/index.js';

test('commands run through a connection, their outcome and what was printed land in the log, secrets masked', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgha-log-'));
  const file = join(dir, 'run.log');
  const log = RunLog.open(file, ['apply', '-i', 'inv.yml']);
  log.addSecrets(['hunter2-very-secret']);
  const reporter = new Reporter({ out: { write: () => true } as unknown as NodeJS.WritableStream, tty: false, log });
  const conn = new LocalConnection(localTarget(), { onCommand: reporter.command, onResult: reporter.result });
  writeFileSync(join(dir, 'conf'), 'password: hunter2-very-secret\nother: private-data\n');
  await conn.run(['sh', '-c', 'echo using hunter2-very-secret; echo oops >&2; exit 3'], { check: false });
  assert.equal(await conn.readFile(join(dir, 'conf')), 'password: hunter2-very-secret\nother: private-data\n');
  await conn.run(['sh', '-c', 'cat >/dev/null'], { stdin: 'stdin-only-value' });
  reporter.progress('node1', 'waiting for the apt lock');
  log.output('err', 'pgha: stage packages failed on node1\n');
  log.close(1);

  const text = readFileSync(file, 'utf8');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.match(text, /^\S+ === \S+ pgha apply -i inv\.yml \(cwd /m);
  assert.match(text, /^\S+ localhost: \$ sh -c 'echo using \*{8}; echo oops >&2; exit 3'$/m);
  assert.match(text, /^\S+ localhost: exit 3 after \d+\.\d\ds: sh -c .*\n\S+ {3}stdout:\n\S+ {5}using \*{8}\n\S+ {3}stderr:\n\S+ {5}oops$/m);
  assert.match(text, /^\S+ localhost: exit 0 after \d+\.\d\ds: read .*conf\n\S+ {5}\(output not logged: 50 bytes of file content\)$/m);
  assert.match(text, /^\S+ > node1: waiting for the apt lock$/m);
  assert.match(text, /^\S+ ! pgha: stage packages failed on node1$/m);
  assert.match(text, /^\S+ === exit 1$/m);
  assert.doesNotMatch(text, /hunter2-very-secret|private-data|stdin-only-value/);
});

test('default logs: one new file per run under the state dir ($PGHA_LOG_DIR here), the oldest beyond the limit removed', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgha-logs-'));
  const env = { PGHA_LOG_DIR: dir };
  assert.equal(defaultLogDir(env), dir);
  const before = process.env.XDG_STATE_HOME;
  process.env.XDG_STATE_HOME = '/x/state';
  try {
    assert.equal(defaultLogDir({}), '/x/state/pgha', 'Linux: the XDG state directory');
  } finally {
    if (before === undefined) delete process.env.XDG_STATE_HOME;
    else process.env.XDG_STATE_HOME = before;
  }
  for (let i = 0; i < KEEP_DEFAULT_LOGS + 5; i++) {
    const f = defaultLogPath('apply', new Date(Date.UTC(2026, 0, 1, 0, 0, i)), env);
    writeFileSync(f, '');
  }
  const files = readdirSync(dir).sort();
  assert.equal(files.length, KEEP_DEFAULT_LOGS);
  assert.equal(files[0], '20260101T000005Z-apply.log');
  // Two runs in one second get two files.
  const a = defaultLogPath('verify', new Date(Date.UTC(2026, 0, 2)), env);
  writeFileSync(a, '');
  assert.notEqual(defaultLogPath('verify', new Date(Date.UTC(2026, 0, 2)), env), a);
});

test('a default (lazy) log becomes a file only once the run reaches for its hosts', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgha-log-'));
  const typo = RunLog.open(join(dir, 'typo.log'), ['apply', '--limt'], { lazy: true });
  typo.output('err', 'pgha: bad input\n');
  typo.close(2);
  assert.equal(typo.written, false);
  const real = RunLog.open(join(dir, 'real.log'), ['apply'], { lazy: true });
  real.output('out', 'before any host\n');
  real.begin();
  real.close(1);
  assert.deepEqual(readdirSync(dir), ['real.log']);
  assert.match(readFileSync(join(dir, 'real.log'), 'utf8'), /pgha apply \(cwd [^\n]*\n\S+ > before any host\n\S+ === exit 1\n$/);
});
