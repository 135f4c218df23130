// How operators reach their hosts, on the lab's real cluster (shared, ensureCluster): apply
// through a bastion with a key held only in ssh-agent; apply with a passphrase-protected key the
// agent holds, the jump host taken from ~/.ssh/config; and `apply --limit`, which changes only the
// named host. Every apply runs under a writer through HAProxy, judged by the lost-write checker.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as lab from '../lab/lab.js';
import { ensureCluster, pgha, recap } from '../helpers.js';
import { Checker, problems } from '../faults/checker.js';
import { faultContext, type FaultContext } from '../faults/suite.js';

const log = (s: string) => console.log(`# ${s.replace(/\n/g, '\n# ')}`);
const cfg = lab.labConfig();
const work = mkdtempSync(join(tmpdir(), 'pgha-access-'));
let inventory: string;
let fc: FaultContext;
const agents: ChildProcess[] = [];

before(async () => {
  inventory = await ensureCluster(log);
  fc = await faultContext(inventory, log);
});
after(async () => {
  lab.bastionOff();
  for (const a of agents) if (a.pid && a.exitCode === null) process.kill(a.pid, 'SIGTERM');
});

/** An ssh-agent of this test's own (ended by its PID afterwards) holding `key`. */
async function agentWith(key: string, passphrase = ''): Promise<string> {
  const socket = join(mkdtempSync(join(work, 'agent-')), 'sock');
  const agent = spawn('ssh-agent', ['-D', '-a', socket], { stdio: 'ignore' });
  agents.push(agent);
  for (let i = 0; i < 50 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 100));
  const askpass = join(work, 'askpass.sh');
  writeFileSync(askpass, '#!/bin/sh\nprintf "%s\\n" "$TEST_PASSPHRASE"\n', { mode: 0o700 });
  const r = spawnSync('ssh-add', ['-q', key], {
    env: { ...process.env, SSH_AUTH_SOCK: socket, SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: 'force', DISPLAY: ':0', TEST_PASSPHRASE: passphrase },
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  return socket;
}

/** An empty home: no ~/.ssh/id_* and (unless written) no ~/.ssh/config, so nothing but the agent can log in. */
function emptyHome(sshConfig?: string): string {
  const home = mkdtempSync(join(work, 'home-'));
  mkdirSync(join(home, '.ssh'), { mode: 0o700 });
  if (sshConfig !== undefined) writeFileSync(join(home, '.ssh', 'config'), sshConfig);
  return home;
}

function tcpRefused(host: string, port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const s = tcpConnect({ host, port });
    s.setTimeout(3000, () => {
      s.destroy();
      resolve('timeout');
    });
    s.once('connect', () => {
      s.destroy();
      resolve(null);
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

/** `pgha apply` under a writer through HAProxy; asserts 0 acknowledged writes lost. */
async function applyUnderWrites(args: string[], env: NodeJS.ProcessEnv = {}) {
  const checker = await Checker.start({ writeEndpoints: fc.haproxy, members: fc.members, cred: fc.cred });
  let r;
  try {
    r = await pgha(['apply', ...args], { env, timeoutMs: 10 * 60_000 });
  } finally {
    const report = await checker.finish();
    assert.deepEqual(problems(report), [], `lost-write checker: ${problems(report).join('; ')}`);
    assert.ok(report.acknowledged > 0);
    log(`writer: ${report.acknowledged} acknowledged, ${report.lost.length} lost, longest gap ${report.unavailabilityS.toFixed(1)} s`);
  }
  return r;
}

/** The sshd log lines of the last minutes on a machine (read through the bastion when the setup is on). */
async function acceptedLogins(name: string, since: string, until: string): Promise<string[]> {
  const r = await lab.ssh(name, `sudo journalctl -u ssh --since '${since}' --until '${until}' --no-pager -o cat | grep 'Accepted publickey' || true`);
  return r.stdout.split('\n').filter(Boolean);
}

/**
 * Now, as journalctl's --since and --until take it (seconds since the epoch: no time zone to get
 * wrong): the next whole second, waited for, so that no earlier login falls into the window.
 */
async function since(): Promise<string> {
  const next = Math.floor(Date.now() / 1000) + 1;
  await new Promise((r) => setTimeout(r, next * 1000 - Date.now() + 50));
  return `@${next}`;
}
/** Now as --until, and a second's wait so that nothing after it falls into the window. */
async function until(): Promise<string> {
  const t = `@${Math.floor(Date.now() / 1000)}`;
  await new Promise((r) => setTimeout(r, 1100));
  return t;
}

test('apply through a bastion, with a key held only in ssh-agent: the hosts answer SSH only through node5', async () => {
  const bastion = await lab.bastionOn(log);
  const dbHosts = ['node1', 'node2', 'node3', 'node4'];
  try {
    for (const n of dbHosts) assert.equal(await tcpRefused(lab.machineAddress(n), 22), 'ENETUNREACH', `${n} must not be reachable directly`);
    assert.equal(await tcpRefused(bastion, 22), null, 'the bastion answers');
    // No key file anywhere pgha looks: the inventory names none, the home is empty, the agent holds the lab key.
    const file = join(work, 'bastion.yml');
    writeFileSync(file, lab.labBastionInventoryText((doc) => doc.deleteIn(['ssh', 'private_key'])));
    assert.doesNotMatch(readFileSync(file, 'utf8'), /private_key/);
    const socket = await agentWith(cfg.keyPath);
    const t0 = await since();
    const r = await applyUnderWrites(['-i', file], { HOME: emptyHome(), SSH_AUTH_SOCK: socket });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual([...recap(r.stdout).keys()].sort(), dbHosts);
    for (const [host, c] of recap(r.stdout)) assert.equal(c.failed, 0, host);
    assert.match(r.stdout, /^VERIFY\n(ok .*\n)+apply finished/m);
    log(`apply through the bastion: ${(r.ms / 1000).toFixed(1)} s`);
    const t1 = await until(); // the lines read next come in directly, once the bastion setup is off
    lab.bastionOff();
    // Each host's sshd saw pgha's logins (user admin; pgBackRest's own are user postgres) come from the bastion's address.
    for (const n of dbHosts) {
      const lines = (await acceptedLogins(n, t0, t1)).filter((l) => / for admin from /.test(l));
      assert.ok(lines.length > 0, `${n}: no login recorded`);
      for (const l of lines) assert.match(l, new RegExp(`^Accepted publickey for admin from ${bastion.replace(/\./g, '\\.')} port`), `${n}: ${l}`);
    }
  } finally {
    lab.bastionOff();
  }
});

test('apply with a passphrase-protected key held by the agent, the jump host from ~/.ssh/config', async () => {
  const key = join(work, 'id_passphrase');
  const passphrase = 'a long passphrase for the lab';
  assert.equal(spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', passphrase, '-C', 'pgha-access-test', '-f', key]).status, 0);
  const pub = readFileSync(`${key}.pub`, 'utf8').trim();
  const machines = ['node1', 'node2', 'node3', 'node4', lab.BASTION];
  for (const n of machines) assert.equal((await lab.ssh(n, `echo '${pub}' >> ~/.ssh/authorized_keys`)).code, 0);
  const bastion = await lab.bastionOn(log);
  try {
    // ProxyJump for the lab's hosts (by name), the inventory naming the encrypted key; no passphrase anywhere but in the agent.
    const home = emptyHome(`Host node1 node2 node3 node4\n  ProxyJump ${cfg.user}@${bastion}\n`);
    const file = join(work, 'passphrase.yml');
    writeFileSync(file, lab.labBastionInventoryText((doc) => {
      doc.deleteIn(['ssh', 'jump']);
      doc.setIn(['ssh', 'private_key'], key);
    }));
    const socket = await agentWith(key, passphrase);
    const t0 = await since();
    const r = await applyUnderWrites(['-i', file], { HOME: home, SSH_AUTH_SOCK: socket });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    for (const [host, c] of recap(r.stdout)) assert.equal(c.failed, 0, host);
    log(`apply with the agent's passphrase key: ${(r.ms / 1000).toFixed(1)} s`);
    const t1 = await until();
    lab.bastionOff();
    const fp = spawnSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${key}.pub`], { encoding: 'utf8' }).stdout.split(' ')[1];
    const lines = await acceptedLogins('node1', t0, t1);
    assert.ok(lines.some((l) => l.includes(`from ${bastion} `) && l.includes(fp)), `node1 saw no login with the passphrase key through the bastion:\n${lines.join('\n')}`);
  } finally {
    lab.bastionOff();
    for (const n of machines) await lab.ssh(n, "sed -i '/pgha-access-test/d' ~/.ssh/authorized_keys");
  }
});

test('apply --limit node2 changes only node2 (its file changes, the others do not); the rest is said skipped', async () => {
  const cfgFile = '/etc/haproxy/haproxy.cfg';
  const hashes = async () => Object.fromEntries(await Promise.all(['node1', 'node2', 'node3'].map(async (n) => [n, (await lab.ssh(n, `sha256sum ${cfgFile}`)).stdout.split(' ')[0]])));
  const before = await hashes();
  const file = join(work, 'limit.yml');
  writeFileSync(file, readFileSync(inventory, 'utf8').replace(/^ {2}maxconn: \d+$/m, '  maxconn: 999'));
  assert.match(readFileSync(file, 'utf8'), /maxconn: 999/);

  const r = await applyUnderWrites(['-i', file, '--limit', 'node2']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^--limit node2: only node2 change; node1, node3, node4 are only read \(health gates, verify\)$/m);
  assert.match(r.stdout, /^stage haproxy: skipped on node1, node3 \(not in --limit\)$/m);
  assert.match(r.stdout, /^stage pgbackrest first backup: skipped \(not in --limit\)$/m);
  assert.match(r.stdout, /^node2: changed file \/etc\/haproxy\/haproxy\.cfg: /m);
  assert.deepEqual([...recap(r.stdout).keys()], ['node2']);
  assert.match(r.stdout, /^not in --limit \(only read\): node1, node3, node4$/m);
  const after = await hashes();
  assert.notEqual(after.node2, before.node2, "node2's haproxy.cfg changed");
  assert.match((await lab.ssh('node2', `grep -c 'maxconn 999' ${cfgFile}`)).stdout.trim(), /^[1-9]/);
  assert.equal(after.node1, before.node1, "node1's haproxy.cfg is untouched");
  assert.equal(after.node3, before.node3, "node3's haproxy.cfg is untouched");

  // The lab's own inventory again: only node2 differs, and only node2 changes back.
  const back = await applyUnderWrites(['-i', inventory]);
  assert.equal(back.code, 0, back.stdout + back.stderr);
  const counts = recap(back.stdout);
  assert.ok(counts.get('node2')!.changed >= 1);
  assert.deepEqual(['node1', 'node3', 'node4'].map((n) => counts.get(n)!.changed), [0, 0, 0]);
  assert.deepEqual(await hashes(), before);
});
