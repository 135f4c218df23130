// pgha apply against the container lab's real Debian 12 machines: from bare hosts to a verified
// cluster (waiting out apt's lock held by another process), idempotence, check mode, a targeted
// change, host key and SSH key refusals, a lock that is never let go. (An apply killed mid-way is
// faults.test.ts's scenario 7, at six points.) Leaves a verified cluster up for the test files
// that follow.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import * as lab from '../lab/lab.js';
import { pgha, recap } from '../helpers.js';
import { DB, processIdentity, sh } from './lab-cluster.js';
import { PassThrough } from 'node:stream';
import { Reporter, Rollout, StageFailed, packages } from '../../src/engine/index.js';
import { loadInventory } from '../../src/inventory/index.js';
import { openSession } from '../../src/session/session.js';

let inventory: string;
const addr = (name: string) => lab.machineAddress(name);
const re = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A copy of the lab inventory with some keys changed, in a temp dir. */
function inventoryWith(changes: [string[], unknown][]): string {
  const doc = parseDocument(readFileSync(inventory, 'utf8'));
  for (const [path, value] of changes) doc.setIn(path, value);
  const dir = mkdtempSync(join(tmpdir(), 'pgha-inv-'));
  const file = join(dir, 'inventory.yml');
  writeFileSync(file, doc.toString());
  return file;
}

function assertVerified(stdout: string): void {
  const verify = stdout.slice(stdout.indexOf('VERIFY'));
  assert.match(verify, /^ok +etcd: 3 members healthy, leader node\d/m);
  assert.match(verify, /^ok +patroni: leader node\d; 2 replica\(s\) streaming/m);
  for (const h of DB) assert.match(verify, new RegExp(`^ok +haproxy \\(${h}\\): port 5000: write\\+read on node\\d; port 5001: replica`, 'm'));
  assert.match(verify, /^ok +pgbackrest \(node4\): stanza main ok, [1-9]\d* backup\(s\)/m);
  assert.doesNotMatch(verify, /FAILED/);
}

// Holds apt's lists lock as apt takes it (an fcntl write lock: python's lockf) on node2 for N seconds; its PID.
const HOLD_APT_LOCK = 'import fcntl, sys, time\nf = open("/var/lib/apt/lists/lock", "w")\nfcntl.lockf(f, fcntl.LOCK_EX)\ntime.sleep(float(sys.argv[1]))\n';
async function holdAptLock(seconds: number): Promise<number> {
  await sh('node2', 'sudo tee /tmp/hold-apt-lock.py >/dev/null', HOLD_APT_LOCK);
  return Number(await sh('node2', `sudo sh -c 'nohup python3 /tmp/hold-apt-lock.py ${seconds} >/dev/null 2>&1 & echo $!'`));
}
const aptLockHeld = (pid: number, seconds: number) => `the apt lists lock, held by process ${pid} (python3 /tmp/hold-apt-lock.py ${seconds})`;

describe('pgha apply on the lab', { timeout: 40 * 60_000 }, () => {
  before(async () => {
    await lab.down();
    await lab.up(4);
    inventory = lab.labInventoryPath();
  });

  test("from bare hosts to a verified cluster, waiting out apt's lock held on node2 for 20 s (an interrupted apt-get)", async (t) => {
    const brief = await holdAptLock(20);
    const r = await pgha(['apply', '-i', inventory]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    // Apply waits, says so (without -v), then installs on node2 too.
    assert.match(r.stdout, new RegExp(`^node2: waiting for ${re(aptLockHeld(brief, 20))}$`, 'm'));
    const waited = Number(/^node2: apt and dpkg locks free after waiting (\d+\.\d)s$/m.exec(r.stdout)?.[1]);
    assert.ok(waited > 5 && waited < 25, r.stdout);
    // The packages op ran on node2 after the wait (the packages are listed in component order).
    assert.match(r.stdout, /^node2: changed packages (?=.*etcd-server)(?=.*postgresql-15)(?=.*patroni)(?=.*pgbackrest)(?=.*haproxy)[^:]*: install /m);
    t.diagnostic(`apply waited ${waited}s for the apt lists lock on node2`);
    assert.match(r.stdout, /Patroni 3\.0\.2[^:]*: DCS etcd \(v2 API/);
    assertVerified(r.stdout);
    // The apply's gate ran `pgbackrest check` moments before: its verify says so instead of running it again.
    assert.match(r.stdout, /^pgBackRest check of stanza main \(WAL archiving works\): ready/m);
    assert.match(r.stdout, /^ok +pgbackrest \(node4\): stanza main ok, .*; pgbackrest check passed \d+ s ago in this apply$/m);
    const v = await pgha(['verify', '-i', inventory]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    assert.match(v.stdout, /^ok +pgbackrest \(node4\): stanza main ok, [1-9]\d* backup\(s\), WAL archived up to [0-9A-F]{24}$/m);
    // pgBackRest's config and the stanza existed before PostgreSQL archived its first segment:
    // not one failed archive_command (it used to be 6 on every new cluster).
    const st = await pgha(['status', '-i', inventory, '--json']);
    assert.equal(st.code, 0, st.stdout + st.stderr);
    const archiving = (JSON.parse(st.stdout) as { backups: { archiving: { failed_count: number; last_archived_wal: string | null } } }).backups.archiving;
    assert.equal(archiving.failed_count, 0, JSON.stringify(archiving));
    assert.ok(archiving.last_archived_wal, JSON.stringify(archiving));
    // Debian's own 15/main cluster was never created.
    for (const h of DB) assert.equal(await sh(h, 'test -e /etc/postgresql/15/main && echo yes || echo no'), 'no');
  });

  test('a second apply changes nothing and restarts nothing', async () => {
    const before = await processIdentity();
    const r = await pgha(['apply', '-i', inventory]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const counts = recap(r.stdout);
    assert.deepEqual([...counts.keys()].sort(), ['node1', 'node2', 'node3', 'node4']);
    for (const [host, c] of counts) assert.equal(c.changed, 0, `${host} changed ${c.changed}:\n${r.stdout}`);
    assert.doesNotMatch(r.stdout, /ran handler/);
    // No gate ran the check in this apply: verify ran it itself.
    assert.match(r.stdout, /^ok +pgbackrest \(node4\): stanza main ok, [1-9]\d* backup\(s\), WAL archived up to [0-9A-F]{24}$/m);
    assert.deepEqual(await processIdentity(), before);
  });

  test('--check after an inventory edit lists the diffs and changes nothing', async () => {
    const edited = inventoryWith([
      [['haproxy', 'maxconn'], 900],
      [['patroni', 'parameters', 'work_mem'], '8MB'],
    ]);
    const cfgBefore = await sh('node1', 'sha256sum /etc/haproxy/haproxy.cfg');
    const r = await pgha(['apply', '-i', edited, '--check']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    for (const h of DB) assert.match(r.stdout, new RegExp(`^${h}: would change file /etc/haproxy/haproxy.cfg: content`, 'm'));
    assert.match(r.stdout, /^ {4}- {4}maxconn 1000$/m);
    assert.match(r.stdout, /^ {4}\+ {4}maxconn 900$/m);
    assert.match(r.stdout, /would change dynamic configuration \(PATCH \/config\): postgresql\.parameters\.work_mem null -> "8MB"/);
    assert.doesNotMatch(r.stdout, /node4: would change/);
    assert.match(r.stdout, /RECAP \(check mode: nothing was changed\)/);
    assert.equal(await sh('node1', 'sha256sum /etc/haproxy/haproxy.cfg'), cfgBefore);
    assert.equal(await sh('node1', "sudo -u postgres psql -XAtc 'show work_mem'"), '4MB');
  });

  test('the edit applied touches only haproxy.cfg (reloaded where it changed) and the dynamic config', async () => {
    const edited = inventoryWith([
      [['haproxy', 'maxconn'], 900],
      [['patroni', 'parameters', 'work_mem'], '8MB'],
      [['patroni', 'parameters', 'max_connections'], 250],
    ]);
    const before = await processIdentity();
    const r = await pgha(['apply', '-i', edited]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    // haproxy.cfg; Patroni's config.yml (its bootstrap.dcs section mirrors the parameters; Patroni
    // reloads it); the live dynamic config through PATCH /config. Nothing else.
    const changedLines = r.stdout.split('\n').filter((l) => /^node\d: changed /.test(l));
    for (const l of changedLines) assert.match(l, /changed (file \/etc\/haproxy\/haproxy\.cfg|file \/etc\/patroni\/config\.yml|dynamic configuration)/, l);
    assert.equal(changedLines.filter((l) => /dynamic configuration/.test(l)).length, 1);
    for (const h of DB) {
      assert.match(r.stdout, new RegExp(`^${h}: ran handler reload haproxy$`, 'm'));
      assert.match(await sh(h, 'cat /etc/haproxy/haproxy.cfg'), /maxconn 900/);
    }
    assert.equal(recap(r.stdout).get('node4')?.changed, 0);
    // max_connections needs a restart: reported as pending, with the command that does it (replicas
    // first, a switchover, the old leader), not done behind the operator's back.
    assert.match(
      r.stdout,
      new RegExp(`^note: pending restart: max_connections takes effect only after PostgreSQL restarts\\. \`pgha restart -i ${re(edited)}\` restarts the members one at a time`, 'm'),
    );
    const after = await processIdentity();
    for (const h of DB) {
      // HAProxy reloads in place (same master process); nothing else restarted.
      for (const what of ['postgres', 'etcd', 'patroni', 'haproxy']) assert.equal(after[`${h} ${what}`], before[`${h} ${what}`], `${h} ${what}`);
    }
    // work_mem needs no restart: every member runs with it once Patroni has applied it.
    for (const h of DB) {
      let value = '';
      for (let i = 0; i < 30 && value !== '8MB'; i++) {
        value = await sh(h, "sudo -u postgres psql -XAtc 'show work_mem'");
        if (value !== '8MB') await new Promise((res) => setTimeout(res, 1000));
      }
      assert.equal(value, '8MB', h);
    }
    // Back to the lab inventory for the tests that follow.
    const back = await pgha(['apply', '-i', inventory]);
    assert.equal(back.code, 0, back.stdout + back.stderr);
  });

  test('an unknown host key is refused unless --accept-new-host-keys', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgha-kh-'));
    const known = join(dir, 'known_hosts');
    writeFileSync(known, '');
    const inv = inventoryWith([[['ssh', 'known_hosts'], known]]);
    const r = await pgha(['verify', '-i', inv]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`node1: the host key of ${re(addr('node1'))}:22 is not in .*known_hosts: it offered the ssh-ed25519 key SHA256:[A-Za-z0-9+/]{43}\\.`));
    assert.match(r.stderr, /--accept-new-host-keys/);
    assert.equal(readFileSync(known, 'utf8'), '');
    const accepted = await pgha(['apply', '-i', inv, '--check', '--accept-new-host-keys']);
    assert.equal(accepted.code, 0, accepted.stdout + accepted.stderr);
    const lines = readFileSync(known, 'utf8').trim().split('\n');
    assert.equal(lines.length, 4);
    assert.ok(['node1', 'node2', 'node3', 'node4'].some((n) => lines[0].startsWith(`${addr(n)} ssh-ed25519 `)), lines[0]);
  });

  test('a changed host key is always refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgha-kh-'));
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'other')]);
    const other = readFileSync(join(dir, 'other.pub'), 'utf8').split(' ').slice(0, 2).join(' ');
    const known = join(dir, 'known_hosts');
    const real = readFileSync(lab.labConfig().knownHostsPath, 'utf8')
      .split('\n')
      .filter((l) => l && !l.split(' ')[0].split(',').includes(addr('node1')));
    writeFileSync(known, [`${addr('node1')} ${other}`, ...real].join('\n') + '\n');
    const inv = inventoryWith([[['ssh', 'known_hosts'], known]]);
    const r = await pgha(['apply', '-i', inv, '--check', '--accept-new-host-keys']);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`node1: WARNING: THE HOST KEY OF ${re(addr('node1'))}:22 HAS CHANGED`));
    // Nothing ran: the recap names node1 as unreachable (the changed key) and says nothing changed.
    assert.match(r.stdout, new RegExp(`^node1 +ok=0 +changed=0 +failed=0 +unreachable=1 +\\(WARNING: THE HOST KEY OF ${re(addr('node1'))}:22 HAS CHANGED`, 'm'));
    assert.doesNotMatch(r.stdout, /changed=[1-9]/);
    assert.match(r.stdout, /^nothing was changed: apply needs every host of the inventory/m);
  });

  test('a wrong SSH key gives a clear error naming the hosts', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgha-key-'));
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'wrong')]);
    const inv = inventoryWith([[['ssh', 'private_key'], join(dir, 'wrong')]]);
    const r = await pgha(['verify', '-i', inv]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /could not connect to 4 of 4 host\(s\)/);
    for (const h of ['node1', 'node2', 'node3', 'node4']) {
      assert.match(r.stderr, new RegExp(`${h}: authentication failed for user admin with the key ${dir}/wrong`));
    }
  });

  test("another process holding apt's lock that never lets go: the packages stage fails after its bound, naming it", async () => {
    const forever = await holdAptLock(3600);
    try {
      const inv = await loadInventory(inventory);
      const session = await openSession(inv, { hosts: [inv.host('node2')] });
      const out = new PassThrough();
      let text = '';
      out.on('data', (d) => (text += d));
      const started = Date.now();
      try {
        await assert.rejects(
          new Rollout({ reporter: new Reporter({ out, tty: false }) }).stage('packages', [session.conn('node2')], () => [packages(['hello'], { lockTimeoutSec: 5 })]),
          StageFailed,
        );
      } finally {
        await session.close();
      }
      assert.ok(Date.now() - started < 30_000, `gave up after ${Date.now() - started} ms`);
      assert.match(text, new RegExp(`^node2: waiting for ${re(aptLockHeld(forever, 3600))}$`, 'm'));
      assert.match(text, new RegExp(`^node2: FAILED packages hello: gave up waiting for ${re(aptLockHeld(forever, 3600))}, after 5s in all: let it finish \\(or end it, if it is stuck\\), then run pgha apply again$`, 'm'));
    } finally {
      await sh('node2', `sudo kill ${forever}`);
    }
  });
});
