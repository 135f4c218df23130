// Day 2 on the lab's real cluster, one cluster for every step: a PostgreSQL and HAProxy host added
// and removed, etcd grown from 3 to 5 members and back, a quorum-breaking edit refused, the leader
// removed, a machine rebuilt and replaced, a replica's data rebuilt. Every change runs with a
// writer through HAProxy and is judged by the lost-write checker (test/faults/checker.ts); every
// apply is preceded by its --check, whose plan must list exactly the steps apply then takes.
// Leaves a verified cluster (node1..node3 database hosts, node4 the repository host) behind; the
// extra machine node5 stays up, with no role.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import * as lab from '../lab/lab.js';
import { ensureCluster, pgha, recap, type CliResult } from '../helpers.js';
import { assertNothingLost, faultContext, leaderName, resultsTable, runScenario, waitEtcdHealthy, type FaultRun, type ScenarioResult } from '../faults/suite.js';
import { etcdctl } from './lab-cluster.js';

const log = (s: string) => console.log(`# ${s.replace(/\n/g, '\n# ')}`);
const DB = ['node1', 'node2', 'node3'];
const ALL = ['node1', 'node2', 'node3', 'node4', 'node5'];
const results: ScenarioResult[] = [];
const timings: string[] = [];
let labInventory: string;
let dir: string;

interface Roles {
  etcd?: string[];
  postgres?: string[];
  haproxy?: string[];
}

/** The lab inventory with node5 as a host (no role unless given) and these roles. */
function inventory(name: string, roles: Roles = {}): string {
  const doc = parseDocument(readFileSync(labInventory, 'utf8'));
  doc.setIn(['hosts', 'node5', 'address'], lab.machineAddress('node5'));
  for (const [role, hosts] of Object.entries(roles)) doc.setIn(['roles', role], doc.createNode(hosts, { flow: true }));
  const file = join(dir, `${name}.yml`);
  writeFileSync(file, doc.toString());
  return file;
}

async function sh(host: string, cmd: string): Promise<string> {
  const r = await lab.ssh(host, cmd, { timeoutMs: 60_000 });
  assert.equal(r.code, 0, `${host}: ${cmd}: ${r.stderr}`);
  return r.stdout.trim();
}

const postmasterStart = (host: string) => sh(host, "sudo -u postgres psql -XAtc 'select pg_postmaster_start_time()'");

/** The plan --check prints: its numbered lines. */
function planned(stdout: string): string[] {
  const at = stdout.indexOf('topology: ');
  if (at < 0) return [];
  const lines: string[] = [];
  for (const l of stdout.slice(at).split('\n').slice(1)) {
    const m = /^ {2}\d+\. (.*)$/.exec(l);
    if (!m) break;
    lines.push(m[1]);
  }
  return lines;
}

/** Where an apply's time went: its stages and gates of a second or more. */
function slowest(stdout: string): string {
  const parts: string[] = [];
  for (const line of stdout.split('\n')) {
    const st = /^stage (.+?) ok \(.*\) in ([\d.]+)s$/.exec(line);
    if (st && Number(st[2]) >= 1) parts.push(`${st[1]} ${st[2]}`);
    const gate = /^(.+?): ready \(([\d.]+)s\)$/.exec(line);
    if (gate && Number(gate[2]) >= 1) parts.push(`"${gate[1]}" ${gate[2]}`);
  }
  return parts.join(', ');
}

/** The steps apply announced as it took them, in order. */
const taken = (stdout: string) => [...stdout.matchAll(/^topology \d+\/\d+: (.*)$/gm)].map((m) => m[1]);

/**
 * A step with the switchover's target left out: apply picks the replica with the least lag when it
 * switches over, and under the writer that can be another one than when --check looked (both at 0).
 */
const anyTarget = (step: string) => step.replace(/^(postgres: switch over from \S+ to )(\S+)( first \(.*?; )\2( is the replica)/, '$1REPLICA$3REPLICA$4');

/**
 * `apply --check` (changes nothing), then apply inside a writer-and-checker scenario; the plan
 * must be exactly the steps taken. The scenario starts on the cluster as `before` describes it
 * (every member streaming; the writer on the HAProxy hosts both inventories have) and ends on the
 * cluster `after` describes (every member streaming, verified).
 */
async function applyUnderLoad(name: string, inv: string, before: string, after: string, expectPlan: RegExp[], args: string[] = []): Promise<{ apply: CliResult; result: ScenarioResult }> {
  const check = await pgha(['apply', '-i', inv, '--check', ...args]);
  assert.equal(check.code, 0, check.stdout + check.stderr);
  const plan = planned(check.stdout);
  assert.equal(plan.length, expectPlan.length, `plan of "${name}":\n${plan.join('\n')}`);
  expectPlan.forEach((re, i) => assert.match(plan[i], re, `plan step ${i + 1} of "${name}"`));
  let apply: CliResult | undefined;
  const ctx = await faultContext(before, log);
  const next = await faultContext(after, log);
  ctx.haproxy = ctx.haproxy.filter((h) => next.haproxy.some((n) => n.name === h.name));
  const { result } = await runScenario(ctx, name, async (r: FaultRun) => {
    apply = await pgha(['apply', '-i', inv, ...args]);
    r.note(`apply exit ${apply.code} in ${(apply.ms / 1000).toFixed(1)} s`);
    if (apply.code !== 0) throw new Error(`apply failed:\n${apply.stdout}\n${apply.stderr}`);
    // From here on the cluster is the one `after` describes.
    Object.assign(ctx, { inventory: next.inventory, inv: next.inv, members: next.members });
  });
  results.push(result);
  timings.push(`${name}: apply ${(apply!.ms / 1000).toFixed(1)} s (${slowest(apply!.stdout)})`);
  assert.equal(apply!.code, 0, `${apply!.stdout}\n${apply!.stderr}`);
  assert.deepEqual(taken(apply!.stdout).map(anyTarget), plan.map(anyTarget), `"${name}": the steps taken are the plan`);
  assertNothingLost(result.scenario, result);
  return { apply: apply!, result };
}

async function assertHealthy(inv: string): Promise<{ leader: string | null; members: { name: string; role: string; state: string; timeline: number }[] }> {
  const r = await pgha(['status', '-i', inv, '--json'], { timeoutMs: 60_000 });
  const doc = JSON.parse(r.stdout) as { verdict: string; reasons: string[]; leader: string | null; members: { name: string; role: string; state: string; timeline: number }[] };
  assert.equal(doc.verdict, 'healthy', `status: ${doc.reasons.join('; ')}`);
  assert.equal(r.code, 0);
  return doc;
}

/** Applying the same inventory again would change nothing: its --check plans no step and no change on any host. */
async function assertNoChange(inv: string): Promise<void> {
  const r = await pgha(['apply', '-i', inv, '--check']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const counts = recap(r.stdout);
  assert.ok(counts.size >= 4, r.stdout);
  for (const [host, c] of counts) assert.equal(c.changed, 0, `apply again: ${host} would change ${c.changed}:\n${r.stdout}`);
  assert.deepEqual(planned(r.stdout), [], r.stdout);
}

/** Every member etcd lists, asked on `host`: "name learner?" */
async function etcdMembers(host: string): Promise<string[]> {
  const json = JSON.parse(await etcdctl(host, 'member list -w json')) as { members: { name: string; isLearner?: boolean }[] };
  return json.members.map((m) => `${m.name}${m.isLearner ? ' (learner)' : ''}`).sort();
}

/** Patroni's list of etcd hosts on a database host. */
async function patroniEtcdHosts(host: string): Promise<string[]> {
  const cfg = await sh(host, 'sudo cat /etc/patroni/config.yml');
  return [...cfg.slice(cfg.indexOf('\netcd')).matchAll(/^ {2}- "([^"]+)"$/gm)].map((m) => m[1]).filter((h) => h.endsWith(':2379'));
}

// Every file pgha writes, by path; a host's sha256 of each that exists.
const MANAGED = [
  '/etc/default/etcd', '/etc/patroni/config.yml', '/etc/haproxy/haproxy.cfg', '/etc/pgbackrest.conf',
  '/etc/apt/apt.conf.d/01pgha-proxy', '/etc/postgresql-common/createcluster.d/pgha.conf',
  '/usr/local/lib/pgha/pgbackrest-archive-push', '/usr/local/lib/pgha/pgbackrest-record-backups',
  '/var/lib/postgresql/.ssh/config', '/var/lib/postgresql/.ssh/authorized_keys', '/var/lib/postgresql/.ssh/known_hosts',
  '/var/lib/pgbackrest/.ssh/authorized_keys', '/var/lib/pgbackrest/.ssh/known_hosts',
  '/etc/systemd/system/pgha-backup-full.service', '/etc/systemd/system/pgha-backup-full.timer',
  '/etc/systemd/system/pgha-backup-diff.service', '/etc/systemd/system/pgha-backup-diff.timer',
];
async function fileHashes(hosts: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const h of hosts) {
    const text = await sh(h, `sudo sh -c 'for f in ${MANAGED.join(' ')}; do [ -f "$f" ] && sha256sum "$f"; done; true'`);
    for (const line of text.split('\n').filter(Boolean)) {
      const [sum, path] = line.split(/\s+/);
      out.set(`${h}:${path}`, sum);
    }
  }
  return out;
}
function changedFiles(a: Map<string, string>, b: Map<string, string>): string[] {
  return [...new Set([...a.keys(), ...b.keys()])].filter((k) => a.get(k) !== b.get(k)).sort();
}

describe('topology changes on the lab cluster', { timeout: 60 * 60_000 }, () => {
  let base: string;

  before(async () => {
    labInventory = await ensureCluster(log);
    await lab.up(5); // node5 joins the running lab
    // node5 starts as an empty machine, whatever an earlier run left on it.
    await lab.ssh('node5', 'sudo sh -c "systemctl disable --now patroni haproxy etcd; rm -rf /var/lib/postgresql/15/main /etc/patroni/config.yml /var/lib/etcd/lab /etc/default/etcd" 2>/dev/null; true');
    dir = mkdtempSync(join(tmpdir(), 'pgha-topology-'));
    base = inventory('base');
    // The standard cluster, node5 a host without a role.
    const r = await pgha(['apply', '-i', base]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });

  after(() => {
    if (results.length) log(`\n${resultsTable(results)}\n${timings.join('\n')}`);
  });

  test('3 -> 4 PostgreSQL hosts: node5 joins as a replica and HAProxy host, the leader never restarted; then back to 3', async () => {
    const add = inventory('add-node5', { postgres: [...DB, 'node5'], haproxy: [...DB, 'node5'] });
    const leader = await leaderName(await faultContext(base));
    const started = await postmasterStart(leader);
    const { apply } = await applyUnderLoad('node5 added (postgres, haproxy)', add, base, add, [
      /^haproxy: node5 starts routing clients/,
      /^postgres: node5 joins as a replica, cloned from the pgBackRest repository/,
    ]);
    assert.match(apply.stdout, /^Patroni: node5 streams from the leader: ready/m);
    assert.match(await sh('node5', 'sudo journalctl -u patroni --no-pager'), /replica has been created using pgbackrest/);
    assert.equal(await postmasterStart(leader), started, 'the leader restarted');
    const status = await assertHealthy(add);
    assert.deepEqual(status.members.map((m) => m.name).sort(), [...DB, 'node5']);
    assert.match(await sh('node1', 'sudo cat /etc/haproxy/haproxy.cfg'), new RegExp(`server node5 ${lab.machineAddress('node5')}:5432`));
    assert.match(await sh('node4', 'sudo cat /etc/pgbackrest.conf'), new RegExp(`pg4-host=${lab.machineAddress('node5')}`));
    await assertNoChange(add);

    // Back to 3: node5 (a replica) leaves, with --purge (its data kept is the leader's case below).
    const { apply: back } = await applyUnderLoad(
      'node5 removed (a replica)',
      base,
      add,
      base,
      [/^postgres: node5 leaves: Patroni stopped and disabled, .*; its data directory \/var\/lib\/postgresql\/15\/main is removed \(--purge\)$/, /^haproxy: node5 stops routing/],
      ['--purge'],
    );
    assert.match(back.stdout, /^Patroni: replication slot node5 dropped on the leader \S+: ready/m);
    assert.equal(await postmasterStart(leader), started, 'the leader restarted');
    const now = await assertHealthy(base);
    assert.deepEqual(now.members.map((m) => m.name).sort(), DB);
    assert.equal(await sh(leader, "sudo -u postgres psql -XAtc \"select count(*) from pg_replication_slots where slot_name = 'node5'\""), '0');
    assert.equal(await sh('node5', 'systemctl is-enabled patroni || true'), 'disabled');
    assert.equal(await sh('node5', 'systemctl is-active haproxy || true'), 'inactive');
    assert.equal(await sh('node5', 'sudo test -e /var/lib/postgresql/15/main && echo there || echo gone'), 'gone');
    assert.equal(await sh('node5', 'sudo test -e /etc/patroni/config.yml && echo there || echo gone'), 'gone');
    assert.doesNotMatch(await sh('node1', 'sudo cat /etc/haproxy/haproxy.cfg'), /node5/);
    await assertNoChange(base);
  });

  test('etcd 3 -> 5 -> 3 members with Patroni following, no failover; a quorum-breaking edit refused with no host changed', async () => {
    const five = inventory('etcd5', { etcd: [...DB, 'node4', 'node5'] });
    const leader = await leaderName(await faultContext(base));
    const started = await postmasterStart(leader);
    const grow = await applyUnderLoad('etcd 3 -> 5 members', five, base, five, [
      /^etcd: add node4 as a learner, start it with ETCD_INITIAL_CLUSTER_STATE=existing, promote it to a voting member$/,
      /^etcd: add node5 as a learner, start it with ETCD_INITIAL_CLUSTER_STATE=existing, promote it to a voting member$/,
    ]);
    assert.match(grow.apply.stdout, /^etcd: node5 caught up and promoted to a voting member: ready/m);
    assert.equal(grow.result.leaderAfter, leader, 'no failover');
    assert.equal(await postmasterStart(leader), started);
    assert.deepEqual(await etcdMembers('node1'), ALL);
    for (const h of DB) assert.deepEqual(await patroniEtcdHosts(h), ALL.map((n) => `${lab.machineAddress(n)}:2379`), h);
    assert.match(await sh('node5', 'cat /etc/default/etcd'), /^ETCD_INITIAL_CLUSTER_STATE="existing"$/m);
    await assertHealthy(five);
    await assertNoChange(five);

    // Two members down, and an edit that removes two that answer: refused before any host is touched.
    const refused = inventory('etcd-refused', { etcd: ['node3', 'node4', 'node5'] });
    for (const h of ['node4', 'node5']) await sh(h, 'sudo systemctl stop etcd');
    try {
      const hashes = await fileHashes(ALL);
      const members = await etcdMembers('node1');
      for (const args of [['--check'], []]) {
        const r = await pgha(['apply', '-i', refused, ...args]);
        assert.equal(r.code, 2, r.stdout + r.stderr);
        assert.match(r.stderr, /^pgha: removing node1 from etcd would lose quorum: 2 answering of 4 voting members \(quorum 3\) would be left, as node4 and node5 do not answer$/m);
        assert.match(r.stderr, /^Safe order: bring node4 and node5 back first .* or remove them from roles\.etcd in an apply of their own .*; then remove node1 and node2\.$/m);
        assert.doesNotMatch(r.stdout, /== stage|topology/, 'no stage ran');
      }
      assert.deepEqual(changedFiles(hashes, await fileHashes(ALL)), [], 'no file changed');
      assert.deepEqual(await etcdMembers('node1'), members);
    } finally {
      for (const h of ['node4', 'node5']) await sh(h, 'sudo systemctl start --no-block etcd');
    }
    await waitEtcdHealthy(await faultContext(five), 120_000);

    const shrink = await applyUnderLoad('etcd 5 -> 3 members', base, five, base, [
      /^etcd: remove member node4, then stop etcd on node4 and remove its data$/,
      /^etcd: remove member node5, then stop etcd on node5 and remove its data$/,
    ]);
    assert.equal(shrink.result.leaderAfter, leader, 'no failover');
    assert.equal(await postmasterStart(leader), started);
    assert.deepEqual(await etcdMembers('node1'), DB);
    for (const h of DB) assert.deepEqual(await patroniEtcdHosts(h), DB.map((n) => `${lab.machineAddress(n)}:2379`), h);
    for (const h of ['node4', 'node5']) {
      assert.equal(await sh(h, 'systemctl is-active etcd || true'), 'inactive');
      assert.equal(await sh(h, 'sudo test -e /var/lib/etcd/lab && echo there || echo gone'), 'gone');
    }
    await assertHealthy(base);
    await assertNoChange(base);
  });

  test('the leader removed from the inventory: a switchover first, 0 lost; back again from its own data', async () => {
    const leader = await leaderName(await faultContext(base));
    const rest = DB.filter((h) => h !== leader);
    const without = inventory('no-leader', { postgres: rest });
    const { apply, result } = await applyUnderLoad('the leader removed', without, base, without, [
      new RegExp(`^postgres: switch over from ${leader} to (${rest.join('|')}) first \\(${leader} leaves roles\\.postgres`),
      new RegExp(`^postgres: ${leader} leaves: Patroni stopped and disabled`),
    ]);
    assert.ok(apply.stdout.indexOf('HAProxy routes the primary port to') < apply.stdout.indexOf('== stage etcd config'), 'the switchover came before any file changed');
    assert.notEqual(result.leaderAfter, leader);
    assert.equal(await sh(leader, 'systemctl is-enabled patroni || true'), 'disabled');
    assert.equal(await sh(leader, 'sudo test -f /var/lib/postgresql/15/main/PG_VERSION && echo kept'), 'kept');
    await assertHealthy(without);
    // Back: it joins again from the data it kept.
    await applyUnderLoad('the old leader back', base, without, base, [new RegExp(`^postgres: ${leader} joins as a replica, from its existing data directory`)]);
    await assertHealthy(base);
  });

  test('a replica powered off, rebuilt (lab rebuild) and replaced: healthy again, 0 lost, the other hosts untouched', async () => {
    const ctx = await faultContext(base, log);
    const leader = await leaderName(ctx);
    const victim = DB.filter((h) => h !== leader).at(-1)!;
    const others = ['node1', 'node2', 'node3', 'node4'].filter((h) => h !== victim);
    const hashes = await fileHashes(others);
    const identity = async () => Promise.all(others.filter((h) => DB.includes(h)).map(async (h) => `${h} ${await postmasterStart(h)} etcd ${await sh(h, 'systemctl show -p MainPID --value etcd')}`));
    const before = await identity();
    let replace: CliResult | undefined;
    let fingerprints: string[] = [];
    const { result } = await runScenario(ctx, `${victim} rebuilt and replaced`, async (r) => {
      await lab.poweroff(victim);
      const rebuilt = await lab.rebuild(victim);
      fingerprints = rebuilt.fingerprints;
      r.note(`${victim} rebuilt in ${(rebuilt.ms / 1000).toFixed(1)} s`);
      replace = await pgha(['replace', '-i', base, victim, '--yes']);
      r.note(`pgha replace exit ${replace.code} in ${(replace.ms / 1000).toFixed(1)} s`);
      if (replace.code !== 0) throw new Error(`pgha replace failed:\n${replace.stdout}\n${replace.stderr}`);
    });
    results.push(result);
    timings.push(`${victim} replaced: pgha replace ${(replace!.ms / 1000).toFixed(1)} s (${slowest(replace!.stdout)})`);
    assertNothingLost(result.scenario, result);
    // The new key was shown as ssh-keygen prints it on the machine, then recorded.
    const ed25519 = fingerprints.find((f) => f.endsWith('(ED25519)'))!.split(' ')[1];
    assert.match(replace!.stdout, new RegExp(`^${victim} \\(${lab.machineAddress(victim).replace(/\./g, '\\.')}:22\\) now offers the ssh-ed25519 key ${ed25519.replace(/[+/]/g, '\\$&')}$`, 'm'));
    assert.match(replace!.stdout, new RegExp(`^known_hosts: ${victim}'s new key recorded`, 'm'));
    assert.deepEqual(taken(replace!.stdout), planned(replace!.stdout));
    assert.deepEqual(taken(replace!.stdout).slice(0, 2), [
      `etcd: remove the old member ${victim} (its machine was rebuilt; it does not answer)`,
      `etcd: add ${victim} as a learner, start it with ETCD_INITIAL_CLUSTER_STATE=existing, promote it to a voting member`,
    ]);
    await assertHealthy(base);
    // The other hosts: no restart, and only the lists that name the rebuilt host's keys changed
    // (the repository host's authorized_keys and known_hosts of user pgbackrest).
    assert.deepEqual(await identity(), before);
    assert.deepEqual(changedFiles(hashes, await fileHashes(others)), ['node4:/var/lib/pgbackrest/.ssh/authorized_keys', 'node4:/var/lib/pgbackrest/.ssh/known_hosts']);
    await assertNoChange(base);
  });

  test('pgha reinit of a replica: rebuilt and streaming again, 0 lost; refused on the leader', async () => {
    const ctx = await faultContext(base, log);
    const leader = await leaderName(ctx);
    const replica = DB.find((h) => h !== leader)!;
    const leaderStart = await postmasterStart(leader);
    const refused = await pgha(['reinit', '-i', base, leader, '--yes']);
    assert.equal(refused.code, 2, refused.stdout + refused.stderr);
    assert.match(refused.stderr, new RegExp(`^pgha: ${leader} is the leader: pgha reinit rebuilds a replica's data\\. Switch over first`, 'm'));
    assert.equal(await postmasterStart(leader), leaderStart);

    await sh(replica, 'sudo -u postgres touch /var/lib/postgresql/15/main/pgha-reinit-marker');
    let reinit: CliResult | undefined;
    const { result } = await runScenario(ctx, `pgha reinit ${replica}`, async () => {
      reinit = await pgha(['reinit', '-i', base, replica, '--yes']);
      if (reinit.code !== 0) throw new Error(`pgha reinit failed:\n${reinit.stdout}\n${reinit.stderr}`);
    });
    results.push(result);
    timings.push(`pgha reinit ${replica}: ${(reinit!.ms / 1000).toFixed(1)} s`);
    assertNothingLost(result.scenario, result);
    assert.match(reinit!.stdout, new RegExp(`^reinit done: ${replica} rebuilt and streaming from ${leader} in [\\d.]+s$`, 'm'));
    assert.equal(await sh(replica, 'sudo test -e /var/lib/postgresql/15/main/pgha-reinit-marker && echo there || echo gone'), 'gone');
    assert.equal(await postmasterStart(leader), leaderStart);
    await assertHealthy(base);
  });
});
