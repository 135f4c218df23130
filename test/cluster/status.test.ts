// pgha status against the lab's real cluster: healthy (and in agreement with patronictl), its SSH
// connections kept for the next call, a replica whose Patroni is stopped, a partitioned machine.
// Leaves a verified cluster behind.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as lab from '../lab/lab.js';
import { PGHA_CLI, REPO, ensureCluster, pgha } from '../helpers.js';

let inventory: string;
const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));

interface StatusDoc {
  cluster: string;
  verdict: string;
  reasons: string[];
  leader: string | null;
  elapsed_ms: number;
  hosts: { name: string; reachable: boolean; error?: string }[];
  members: { name: string; host: string; role: string; state: string; patroni_state: string; timeline: number; lag_bytes: number | null }[];
  etcd: { name: string; healthy: boolean; leader: boolean }[];
  haproxy: { name: string; primary: string[]; replicas: string[] }[];
  backups: { last_full: { label: string } | null; archiving: { failing: boolean } | null };
}

async function status(): Promise<{ code: number; doc: StatusDoc; ms: number; stderr: string }> {
  const r = await pgha(['status', '-i', inventory, '--json'], { timeoutMs: 60_000 });
  let doc: StatusDoc;
  try {
    doc = JSON.parse(r.stdout) as StatusDoc;
  } catch {
    assert.fail(`status --json printed no JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
  return { code: r.code, doc, ms: r.ms, stderr: r.stderr };
}

async function until(what: string, timeoutMs: number, fn: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await fn()) return;
    await sleep(2000);
  }
  assert.fail(`timed out after ${timeoutMs / 1000}s waiting for ${what}`);
}

const verified = async () => (await pgha(['verify', '-i', inventory])).code === 0;

describe('pgha status on the lab', { timeout: 15 * 60_000 }, () => {
  before(async () => {
    inventory = await ensureCluster();
    await until('a healthy status', 120_000, async () => (await status()).code === 0);
  });

  test('a healthy cluster: exit 0, and the same members, roles, leader and timeline as patronictl', async (t) => {
    const { code, doc } = await status();
    assert.equal(code, 0, JSON.stringify(doc.reasons));
    t.diagnostic(`status gathered in ${doc.elapsed_ms} ms`);
    assert.equal(doc.cluster, 'lab');
    assert.equal(doc.verdict, 'healthy');
    assert.deepEqual(doc.reasons, []);
    const r = await lab.ssh('node1', 'sudo -u postgres patronictl -c /etc/patroni/config.yml list -f json', { timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    const list = JSON.parse(r.stdout) as { Member: string; Host: string; Role: string; State: string; TL?: number }[];
    const roleOf: Record<string, string> = { Leader: 'leader', Replica: 'replica', 'Sync Standby': 'sync_standby', 'Standby Leader': 'standby_leader' };
    const mine = doc.members.map((m) => [m.name, m.host, m.role, m.patroni_state, m.timeline]).sort();
    const theirs = list.map((m) => [m.Member, m.Host, roleOf[m.Role] ?? m.Role, m.State, m.TL]).sort();
    assert.deepEqual(mine, theirs);
    assert.equal(doc.leader, list.find((m) => m.Role === 'Leader')?.Member);
    for (const m of doc.members) {
      assert.equal(m.host, lab.machineAddress(m.name));
      assert.equal(m.state, m.name === doc.leader ? 'running' : 'streaming', m.name);
      assert.equal(typeof m.lag_bytes, 'number');
    }
    assert.equal(doc.etcd.length, 3);
    assert.ok(doc.etcd.every((e) => e.healthy));
    assert.equal(doc.etcd.filter((e) => e.leader).length, 1);
    assert.equal(doc.haproxy.length, 3);
    for (const h of doc.haproxy) {
      assert.deepEqual(h.primary, [doc.leader], h.name);
      assert.deepEqual(h.replicas.sort(), doc.members.filter((m) => m.name !== doc.leader).map((m) => m.name).sort(), h.name);
    }
    assert.ok(doc.backups.last_full, 'a full backup');
    assert.equal(doc.backups.archiving?.failing, false);

    const text = await pgha(['status', '-i', inventory], { timeoutMs: 60_000 });
    assert.equal(text.code, 0, text.stdout + text.stderr);
    assert.match(text.stdout, new RegExp(`^cluster lab: HEALTHY +\\(leader ${doc.leader};`));
    assert.doesNotMatch(text.stdout, /\x1b\[/, 'no color codes without a terminal');
  });

  test('status keeps its SSH connections for the next call (ssh.persist); with ssh.persist: 0 it logs in every time', async (t) => {
    // sshd's log of logins on a host; the look itself is one more (through the lab's own ssh).
    const logins = async (host: string) => Number((await lab.ssh(host, "sudo journalctl -u ssh -o cat --no-pager | grep -c 'Accepted publickey'", { timeoutMs: 60_000 })).stdout.trim());
    // The backends of psql sessions pgha keeps open on a host, and its kept root shells there.
    const keptPsql = async (host: string) => (await lab.ssh(host, `sudo -u postgres psql -XAtc "select pid from pg_stat_activity where application_name = 'pgha'"`, { timeoutMs: 60_000 })).stdout.trim();
    const keptShells = async (host: string) => (await lab.ssh(host, 'pgrep -c -f \'^bash -c d=[$][(]mktemp -d -p /dev/shm\' || true', { timeoutMs: 60_000 })).stdout.trim();
    assert.equal((await status()).code, 0);
    const backend = await keptPsql('node2');
    assert.match(backend, /^\d+$/, 'one psql kept open on node2');
    const before = await logins('node2');
    const runs = [await status(), await status()];
    assert.deepEqual(runs.map((r) => r.code), [0, 0]);
    t.diagnostic(`status through kept connections: ${runs.map((r) => `${r.ms} ms (gathering ${r.doc.elapsed_ms} ms)`).join(', ')}`);
    assert.equal((await logins('node2')) - before, 1, 'two status calls logged in to node2 no more: only the look at its log did');
    assert.equal(await keptPsql('node2'), backend, 'the same PostgreSQL backend answered both calls');
    assert.equal(await keptShells('node4'), '1', "one kept root shell on node4 (the repository host) ran both of its batches");
    // node2's TLS files and data disk came from its kept asker: it had no batch, and so no root shell.
    const askers = (await lab.ssh('node2', "pgrep -c -f '^python3 -c import concurrent' || true", { timeoutMs: 60_000 })).stdout.trim();
    assert.equal(askers, '1', 'one kept asker (python3, as root) on node2');
    assert.equal(await keptShells('node2'), '0', 'no batch on node2, so no root shell there');
    const verbose = await pgha(['status', '-i', inventory, '--json', '--verbose'], { timeoutMs: 60_000 });
    assert.equal(verbose.code, 0, verbose.stderr);
    assert.match(verbose.stderr, /^node2: \$ status asker: python3 \(etcd, TLS files, data disk\) <<< \{"tls":/m);
    assert.doesNotMatch(verbose.stderr, /^node2: \$ (TLS facts|data disk)/m, 'unchanged TLS files and the data disk came from the asker');
    assert.match(verbose.stderr, /^node4: \$ TLS facts: pgbackrest$/m, 'the repository host (no Python asker) runs its batch');

    const dir = mkdtempSync(join(tmpdir(), 'pgha-status-persist-'));
    try {
      const noKeep = join(dir, 'inventory.yml');
      writeFileSync(noKeep, readFileSync(inventory, 'utf8').replace(/^ssh:\n/m, 'ssh:\n  persist: 0\n'));
      const from = await logins('node2');
      for (let i = 0; i < 2; i++) assert.equal((await pgha(['status', '-i', noKeep, '--json'], { timeoutMs: 60_000 })).code, 0);
      assert.equal((await logins('node2')) - from, 3, 'ssh.persist: 0: each status logged in to node2 (and the look at its log)');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a host whose sshd forwards nothing: its URLs are asked by curl there, the others' over the kept connection, and all is healthy", async () => {
    const host = 'node3';
    const conf = '/etc/ssh/sshd_config.d/pgha-test-no-forwarding.conf';
    // A keeper of its own (its own runtime directory): connections made after sshd took the setting.
    // ssh.persist: 1, so that keeper ends by itself seconds after the call.
    const dir = mkdtempSync(join(tmpdir(), 'pgha-status-noforward-'));
    const inv = join(dir, 'inventory.yml');
    writeFileSync(inv, readFileSync(inventory, 'utf8').replace(/^ssh:\n/m, 'ssh:\n  persist: 1\n'));
    try {
      const set = await lab.ssh(host, `echo 'AllowTcpForwarding no' | sudo tee ${conf} >/dev/null && sudo systemctl reload ssh`, { timeoutMs: 60_000 });
      assert.equal(set.code, 0, set.stderr);
      const r = await pgha(['status', '-i', inv, '--json', '--verbose'], { env: { PGHA_RUNTIME_DIR: join(dir, 'run') }, timeoutMs: 60_000 });
      assert.equal(r.code, 0, `healthy (its members and HAProxy answered): ${r.stdout}\n${r.stderr}`);
      const doc = JSON.parse(r.stdout) as StatusDoc;
      assert.deepEqual(doc.haproxy.find((h) => h.name === host)?.primary, [doc.leader], JSON.stringify(doc.haproxy));
      assert.match(r.stderr, new RegExp(`^${host}: \\$ curl \\S*http`, 'm'), 'curl asked on the host that forwards nothing');
      assert.match(r.stderr, /^node2: \$ GET \S+ \(over the SSH connection\)$/m, 'the others over their kept connection');
      assert.doesNotMatch(r.stderr, /^node2: \$ curl /m);
    } finally {
      await lab.ssh(host, `sudo rm -f ${conf} && sudo systemctl reload ssh`, { timeoutMs: 60_000 });
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('Patroni stopped on a replica: degraded, exit 1, the reason names it', async () => {
    const { doc } = await status();
    const replica = doc.members.find((m) => m.name !== doc.leader)!.name;
    const stop = await lab.ssh(replica, 'sudo systemctl stop patroni', { timeoutMs: 60_000 });
    assert.equal(stop.code, 0, stop.stderr);
    try {
      const r = await status();
      assert.equal(r.code, 1, JSON.stringify(r.doc.reasons));
      assert.equal(r.doc.verdict, 'degraded');
      assert.ok(r.doc.reasons.some((reason) => reason.startsWith(`${replica} `)), JSON.stringify(r.doc.reasons));
      assert.notEqual(r.doc.members.find((m) => m.name === replica)?.state, 'streaming');
    } finally {
      await lab.ssh(replica, 'sudo systemctl start patroni', { timeoutMs: 60_000 });
    }
    await until('a healthy status again', 180_000, async () => (await status()).code === 0);
  });

  test('--watch refreshes until Ctrl+C and shows a change as it happens', async (t) => {
    const child = spawn(process.execPath, [...PGHA_CLI, 'status', '-i', inventory, '--watch', '--json'], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const exited = new Promise<{ code: number | null; signal: string | null }>((res) => child.on('close', (code, signal) => res({ code, signal })));
    // Pretty-printed documents, one after another: each ends with a "}" alone on its line.
    const docs = () => out.split(/^\}$/m).slice(0, -1).map((d) => JSON.parse(`${d}}`) as StatusDoc);
    const seen = async (what: string, timeoutMs: number, fn: (d: StatusDoc) => boolean) => {
      const end = Date.now() + timeoutMs;
      while (Date.now() < end) {
        const i = docs().findIndex(fn);
        if (i >= 0) return i;
        await sleep(200);
      }
      assert.fail(`--watch never showed ${what} in ${docs().length} reports; stderr: ${err}`);
    };
    let replica = '';
    try {
      const first = await seen('a healthy cluster', 30_000, (d) => d.verdict === 'healthy');
      replica = docs()[first].members.find((m) => m.name !== docs()[first].leader)!.name;
      const stop = await lab.ssh(replica, 'sudo systemctl stop patroni', { timeoutMs: 60_000 });
      assert.equal(stop.code, 0, stop.stderr);
      const later = await seen(`${replica} stopped`, 30_000, (d) => d.verdict === 'degraded' && d.reasons.some((r) => r.startsWith(`${replica} `)));
      assert.ok(later > first, 'a later report');
      t.diagnostic(`${docs().length} reports; the stop showed in report ${later + 1}`);
    } finally {
      child.kill('SIGINT');
      if (replica) await lab.ssh(replica, 'sudo systemctl start patroni', { timeoutMs: 60_000 });
    }
    const end = await exited;
    assert.equal(end.signal, 'SIGINT', `ended by Ctrl+C, not by itself: exit ${end.code}; stderr: ${err}`);
    await until('a healthy status again', 180_000, async () => (await status()).code === 0);
  });

  test('a partitioned machine: status answers within seconds and names it unreachable', async (t) => {
    const { doc } = await status();
    // A replica: cutting off the leader would start a failover, not what this test is about.
    const cut = doc.members.find((m) => m.name !== doc.leader)!.name;
    lab.partition(cut);
    try {
      const r = await status();
      t.diagnostic(`status with ${cut} partitioned: ${r.ms} ms (process), ${r.doc.elapsed_ms} ms (gathering)`);
      assert.ok(r.ms < 15_000, `status took ${r.ms} ms`);
      assert.equal(r.code, 1, JSON.stringify(r.doc.reasons));
      assert.equal(r.doc.verdict, 'degraded');
      const host = r.doc.hosts.find((h) => h.name === cut)!;
      assert.equal(host.reachable, false);
      assert.match(host.error ?? '', /cannot connect|timed out/);
      assert.ok(r.doc.reasons.some((reason) => reason.startsWith(`host ${cut} is unreachable`)), JSON.stringify(r.doc.reasons));
      assert.equal(r.doc.leader, doc.leader, 'the leader is still known');
    } finally {
      lab.heal(cut);
    }
    await until('the cluster to verify again', 300_000, verified);
  });
});
