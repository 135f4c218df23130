// The engine converging a host over real SSH (loopback sshd, sudo): first run changes,
// second run changes nothing, check mode changes nothing.
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, test } from 'node:test';
import { Reporter, Rollout, command, directory, file, restartService } from '../../../src/engine/index.js';
import { Masker, SshConnection, type Connection } from '../../../src/ssh/index.js';
import { SUDO_USER, Sshd, startSshd } from '../ssh/sshd-fixture.js';

let sshd: Sshd;
let conn: SshConnection;
let root: string;

before(async () => {
  sshd = await startSshd();
  conn = await SshConnection.connect(sshd.target(), { masker: new Masker(['Repl1cation-pw']) });
  root = join(sshd.dir, 'etc-pgha');
});
after(async () => {
  await conn?.close();
  await sshd?.stop();
});

function rollout(check = false): { rollout: Rollout; text: () => string } {
  const out = new PassThrough();
  let buf = '';
  out.on('data', (d) => (buf += d));
  return { rollout: new Rollout({ check, reporter: new Reporter({ out, tty: false }) }), text: () => buf };
}

const ops = (_conn: Connection) => [
  directory(root, { owner: 'root', group: SUDO_USER, mode: 0o750 }),
  file(join(root, 'patroni.yml'), 'scope: main\nreplication_password: Repl1cation-pw\n', {
    owner: SUDO_USER,
    group: 'root',
    mode: 0o640,
    notify: [restartService('patroni')],
  }),
  command('initialise marker', ['sh', '-c', 'echo done > "$1"', 'sh', join(root, 'init.done')], { unless: ['test', '-e', join(root, 'init.done')] }),
];

test('check mode on a fresh host changes nothing and shows what would change', async () => {
  const { rollout: r, text } = rollout(true);
  const res = await r.stage('config', [conn], ops);
  assert.equal(res.changed, 3);
  assert.throws(() => statSync(root));
  assert.match(text(), /db-test: would change directory .*: create \(mode 0750\)/);
  assert.match(text(), /\+replication_password: \*{8}/);
  assert.ok(!text().includes('Repl1cation-pw'));
  assert.match(text(), /would run handler restart patroni/);
});

test('first run converges, second run reports 0 changed', async () => {
  const first = rollout();
  // The handler would restart a real service: replace it with a recorder for this test.
  let restarts = 0;
  const withFakeHandler = (c: Connection) =>
    ops(c).map((op) => (op.notify ? { ...op, notify: [{ name: 'restart patroni', run: async () => void restarts++ }] } : op));
  const r1 = await first.rollout.stage('config', [conn], withFakeHandler);
  assert.equal(r1.changed, 3);
  assert.equal(restarts, 1);
  const st = statSync(join(root, 'patroni.yml'));
  assert.equal(st.mode & 0o7777, 0o640);
  assert.equal(statSync(root).mode & 0o7777, 0o750);
  assert.equal(readFileSync(join(root, 'patroni.yml'), 'utf8'), 'scope: main\nreplication_password: Repl1cation-pw\n');
  assert.equal(readFileSync(join(root, 'init.done'), 'utf8'), 'done\n');

  const second = rollout();
  const r2 = await second.rollout.stage('config', [conn], withFakeHandler);
  assert.equal(r2.changed, 0);
  assert.equal(restarts, 1);
  assert.equal(second.rollout.finish(), 0);
  assert.match(second.text(), /db-test {2}ok=3 {2}changed=0 {2}failed=0/);
});

test('check mode after a drift shows the diff and leaves the drift', async () => {
  const path = join(root, 'patroni.yml');
  writeFileSync(path, 'scope: other\nreplication_password: Repl1cation-pw\n');
  const { rollout: r, text } = rollout(true);
  await r.stage('config', [conn], ops);
  assert.match(text(), /would change file .*patroni.yml: content\n {4}--- .*\n {4}\+\+\+ .*\n {4}@@ -1,2 \+1,2 @@\n {4}-scope: other\n {4}\+scope: main/);
  assert.equal(readFileSync(path, 'utf8'), 'scope: other\nreplication_password: Repl1cation-pw\n');
});
