// Day 2 on the lab's real cluster, each change under a writer through HAProxy judged by the
// lost-write checker: pinned versions (apply installs exactly them, reports drift and leaves it),
// the upgrade's preflight refusing a lagging replica before touching anything, a real minor
// upgrade (Debian 12's postgresql-15 15.18 -> 15.20 and haproxy deb12u3 -> deb12u4 from
// bookworm-security, through the lab's apt proxy) with one switchover, Patroni restarted under
// maintenance mode without restarting PostgreSQL, `pgha restart` after a max_connections change
// (a member that does not come back stops it; then every member, one switchover), and the same
// with synchronous_mode through `apply --restart-pending` (the synchronous standby takes over).
// Starts from fresh machines (the old versions must be installed first); leaves a verified
// cluster with the lab inventory's settings on the newest versions.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import * as lab from '../lab/lab.js';
import { pgha } from '../helpers.js';
import { assertNothingLost, clusterView, faultContext, leaderName, resultsTable, runScenario, sh, sleep, waitAllStreaming, type FaultContext, type FaultRun, type ScenarioResult } from '../faults/suite.js';
import { openSession } from '../../src/session/session.js';
import { Steps } from '../../src/engine/index.js';
import { etcdMemberTurn, patroniUnderPause } from '../../src/cluster/upgrade.js';

const log = (s: string) => console.log(`# ${s.replace(/\n/g, '\n# ')}`);
const DB = ['node1', 'node2', 'node3'];
const OLD = { 'postgresql-15': '15.18-0+deb12u1', haproxy: '2.6.12-1+deb12u3' };
const NEW = { 'postgresql-15': '15.20-0+deb12u1', haproxy: '2.6.12-1+deb12u4' };
let inventory: string;
let ctx: FaultContext;
const results: ScenarioResult[] = [];

/** A copy of the lab inventory with some keys changed, in a temp dir. */
function inventoryWith(changes: [string[], unknown][]): string {
  const doc = parseDocument(readFileSync(inventory, 'utf8'));
  for (const [path, value] of changes) doc.setIn(path, value);
  const file = join(mkdtempSync(join(tmpdir(), 'pgha-day2-')), 'inventory.yml');
  writeFileSync(file, doc.toString());
  return file;
}

const installed = async (host: string, name: string) => sh(host, `dpkg-query -W -f '\${Version}' ${name}`);
const psql = (host: string, sql: string) => sh(host, `sudo -u postgres psql -XAtc "${sql}"`);

/** The leader's timeline: a switchover or failover adds one. */
async function timeline(): Promise<number> {
  const members = await clusterView(ctx);
  const leader = members?.find((m) => m.role === 'leader' || m.role === 'master');
  assert.ok(leader?.timeline, JSON.stringify(members));
  return leader.timeline;
}

/** One checked scenario: 0 lost, no duplicates, never two primaries, verified afterwards. */
async function checked(name: string, fault: (r: FaultRun) => Promise<void>): Promise<ScenarioResult> {
  const { result, verifyOut } = await runScenario(ctx, name, fault);
  results.push(result);
  log(`${name}: longest write gap ${result.unavailabilityS} s, ${result.acknowledged} writes acknowledged, ${result.lost} lost, leader ${result.leaderBefore} -> ${result.leaderAfter}`);
  assertNothingLost(name, result, verifyOut);
  return result;
}

/** Runs pgha inside a scenario; a failure ends the scenario with its output. */
async function pghaIn(r: FaultRun, args: string[]): Promise<string> {
  const res = await pgha(args, { timeoutMs: 20 * 60_000 });
  r.note(`pgha ${args[0]}: exit ${res.code} in ${(res.ms / 1000).toFixed(1)} s`);
  log(`pgha ${args.join(' ')} (exit ${res.code}, ${(res.ms / 1000).toFixed(1)} s):\n${res.stdout}${res.stderr}`);
  if (res.code !== 0) throw new Error(`pgha ${args[0]} failed (exit ${res.code}): ${res.stdout}${res.stderr}`);
  return res.stdout;
}

describe('day 2 on the lab: pinned versions, upgrade, rolling restart, synchronous mode', { timeout: 60 * 60_000 }, () => {
  let pinnedOld: string;
  let pinnedNew: string;

  before(async () => {
    await lab.down();
    await lab.up(4);
    inventory = lab.labInventoryPath();
    pinnedOld = inventoryWith([[['packages', 'versions'], OLD]]);
    pinnedNew = inventoryWith([[['packages', 'versions'], NEW]]);
  });

  after(() => {
    if (results.length) log(`\n${resultsTable(results)}`);
  });

  test('bookworm-security comes through the lab apt proxy: both versions of each package are offered', async () => {
    // The machines carry the host's apt sources (bookworm and bookworm-security); pgha sets the proxy.
    const proxy = lab.labConfig().proxyUrl;
    await sh('node1', `sudo apt-get -q -o Acquire::http::Proxy=${proxy} update >/dev/null`, 300_000);
    const madison = await sh('node1', 'apt-cache madison postgresql-15 haproxy');
    for (const v of [...Object.values(OLD), ...Object.values(NEW)]) assert.match(madison, new RegExp(`\\| ${v.replace(/[+.]/g, '\\$&')} \\|`), madison);
  });

  test('pinned versions: apply installs exactly the pins; newer pins are reported as drift and left alone', async () => {
    const r = await pgha(['apply', '-i', pinnedOld], { timeoutMs: 20 * 60_000 });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    for (const h of DB) {
      assert.match(r.stdout, new RegExp(`^${h}: changed packages .*: install .*postgresql-15 15\\.18-0\\+deb12u1, .*haproxy 2\\.6\\.12-1\\+deb12u3`, 'm'));
      assert.equal(await installed(h, 'postgresql-15'), OLD['postgresql-15']);
      assert.equal(await installed(h, 'haproxy'), OLD.haproxy);
      assert.match(await psql(h, 'show server_version'), /^15\.18 /);
    }
    assert.match(await sh('node1', 'cat /etc/apt/preferences.d/pgha.pref'), /^Package: postgresql-15\nPin: version 15\.18-0\+deb12u1\nPin-Priority: 990$/m);
    assert.doesNotMatch(r.stdout, /drift/);
    // The newer pins: drift on every database host, nothing installed.
    const d = await pgha(['apply', '-i', pinnedNew], { timeoutMs: 10 * 60_000 });
    assert.equal(d.code, 0, d.stdout + d.stderr);
    for (const h of DB) {
      assert.match(d.stdout, new RegExp(`^note: ${h}: postgresql-15 15\\.18-0\\+deb12u1 is installed, the inventory pins 15\\.20-0\\+deb12u1 \\(drift; apply leaves it\\): \`pgha upgrade\` moves it to the pin$`, 'm'));
      assert.match(d.stdout, new RegExp(`^note: ${h}: haproxy 2\\.6\\.12-1\\+deb12u3 is installed, the inventory pins 2\\.6\\.12-1\\+deb12u4 `, 'm'));
      assert.equal(await installed(h, 'postgresql-15'), OLD['postgresql-15']);
    }
    assert.doesNotMatch(d.stdout, /changed packages/);
    ctx = await faultContext(pinnedNew, log);
  });

  test('upgrade preflight: a replica whose WAL replay is stopped (lagging) is named, and no host is touched', async () => {
    await waitAllStreaming(ctx, 300_000);
    const leader = await leaderName(ctx);
    const replica = DB.find((h) => h !== leader)!;
    // Patroni resumes a replay paused with pg_wal_replay_pause() within a loop (PostgreSQL 14+),
    // so the replica's startup process is stopped instead: it receives WAL but replays none.
    const startup = await sh(replica, "pgrep -u postgres -f 'startup recovering'");
    await sh(replica, `sudo kill -STOP ${startup}`);
    const pinsBefore = await sh('node1', 'sha256sum /etc/apt/preferences.d/pgha.pref');
    try {
      await psql(leader, 'create table pgha_day2_lag(x text); insert into pgha_day2_lag select repeat(md5(i::text), 20) from generate_series(1, 5000) i; drop table pgha_day2_lag');
      const r = await pgha(['upgrade', '-i', pinnedNew, '--yes'], { timeoutMs: 10 * 60_000 });
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, /^pgha: upgrade: preflight failed, nothing was changed:$/m);
      assert.match(r.stderr, new RegExp(`^  ${replica}: lags [\\d.]+ MiB behind ${leader}, more than maximum_lag_on_failover \\(1\\.0 MiB\\)$`, 'm'));
      assert.doesNotMatch(r.stdout, /apt-get update|==> /);
    } finally {
      await sh(replica, `sudo kill -CONT ${startup}`);
    }
    for (const h of DB) assert.equal(await installed(h, 'postgresql-15'), OLD['postgresql-15'], h);
    assert.equal(await sh('node1', 'sha256sum /etc/apt/preferences.d/pgha.pref'), pinsBefore);
    await waitAllStreaming(ctx, 300_000);
  });

  test('a plain switchover under the writer (the yardstick for the upgrade)', async () => {
    await checked('plain switchover', async (r) => {
      const candidate = DB.find((h) => h !== r.leader)!;
      await pghaIn(r, ['switchover', '-i', pinnedNew, '--candidate', candidate, '--yes']);
    });
  });

  test('minor upgrade under the writer: every member on 15.20, HAProxy on deb12u4, 0 lost, one switchover', async (t) => {
    const plain = results.find((r) => r.scenario === 'plain switchover')!;
    const check = await pgha(['upgrade', '-i', pinnedNew, '--check'], { timeoutMs: 10 * 60_000 });
    assert.equal(check.code, 0, check.stdout + check.stderr);
    for (const h of DB) assert.match(check.stdout, new RegExp(`^${h}:\\n  haproxy 2\\.6\\.12-1\\+deb12u3 -> 2\\.6\\.12-1\\+deb12u4 \\(pinned\\)  \\[HAProxy\\]\\n  postgresql-15 15\\.18-0\\+deb12u1 -> 15\\.20-0\\+deb12u1 \\(pinned\\)  \\[PostgreSQL roll\\]$`, 'm'));
    assert.match(check.stdout, /^node4: up to date$/m);
    assert.match(check.stdout, /switch over from node\d to an upgraded, caught-up replica/);
    assert.equal(await installed('node1', 'postgresql-15'), OLD['postgresql-15'], 'check mode installs nothing');
    const tl = await timeline();
    let out = '';
    const res = await checked('minor upgrade', async (r) => {
      out = await pghaIn(r, ['upgrade', '-i', pinnedNew, '--yes']);
    });
    for (const h of DB) {
      assert.equal(await installed(h, 'postgresql-15'), NEW['postgresql-15'], h);
      assert.equal(await installed(h, 'haproxy'), NEW.haproxy, h);
      assert.match(await psql(h, 'show server_version'), /^15\.20 \(Debian 15\.20-0\+deb12u1\)$/, h);
      // HAProxy runs the new binary (its master re-executed on reload).
      assert.doesNotMatch(await sh(h, 'sudo readlink /proc/$(systemctl show -p MainPID --value haproxy)/exe'), /deleted/, h);
      assert.match(out, new RegExp(`^  ${h} +postgresql-15 +15\\.18-0\\+deb12u1 +-> 15\\.20-0\\+deb12u1$`, 'm'));
    }
    assert.match(out, /^  unchanged: node4$/m);
    assert.equal(await timeline(), tl + 1, 'exactly one switchover');
    assert.notEqual(res.leaderAfter, res.leaderBefore);
    const goal = plain.unavailabilityS + 1;
    t.diagnostic(`longest write gap: upgrade ${res.unavailabilityS} s, plain switchover ${plain.unavailabilityS} s (goal: upgrade <= ${goal.toFixed(1)} s: ${res.unavailabilityS <= goal ? 'met' : 'MISSED'})`);
    // The goal is a plain switchover's gap + 1 s; on 2 loaded cores a margin: an outage beyond a switchover's fails.
    assert.ok(res.unavailabilityS <= plain.unavailabilityS + 4, `upgrade gap ${res.unavailabilityS} s, plain switchover ${plain.unavailabilityS} s`);
    // Upgraded to the pins: nothing left to do, no drift.
    const again = await pgha(['upgrade', '-i', pinnedNew, '--yes'], { timeoutMs: 10 * 60_000 });
    assert.equal(again.code, 0, again.stdout + again.stderr);
    assert.match(again.stdout, /^nothing to upgrade: every host runs the newest \(or pinned\) versions$/m);
    // Pins older than what runs: refused (pgha never downgrades).
    const down = await pgha(['upgrade', '-i', pinnedOld, '--check'], { timeoutMs: 10 * 60_000 });
    assert.equal(down.code, 1, down.stdout + down.stderr);
    assert.match(down.stdout, /^  node1: postgresql-15 15\.20-0\+deb12u1 is installed, newer than the pin 15\.18-0\+deb12u1: pgha never downgrades/m);
  });

  test('upgrade --all --check: what apt-get upgrade would do on each host is in its plan too (nothing restarted off the database hosts)', async () => {
    const r = await pgha(['upgrade', '-i', pinnedNew, '--all', '--check'], { timeoutMs: 10 * 60_000 });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^upgrade of cluster lab \(--all: everything apt-get upgrade would do, too\)/m);
    // apt's own answer on the repository host, with the lists pgha just refreshed.
    const sim = await sh('node4', 'apt-get -s -q upgrade');
    const upgradable = [...sim.matchAll(/^Inst (\S+) \[/gm)].map((m) => m[1]);
    const section = /^node4:(?: up to date)?\n((?: {2}.*\n)*)/m.exec(r.stdout)?.[0] ?? '';
    if (!upgradable.length) assert.match(section, /^node4: up to date$/m, r.stdout);
    for (const name of upgradable) assert.match(section, new RegExp(`^ {2}${name.replace(/[+.]/g, '\\$&')} \\S+ -> \\S+  \\[no restart\\]$`, 'm'), r.stdout);
    log(`--all on node4: ${upgradable.length} package(s): ${upgradable.join(', ') || 'none'}`);
  });

  test("etcd members one at a time (etcd-server reinstalled: its package restarts etcd), healthy between: 0 lost", async () => {
    const pids = Object.fromEntries(await Promise.all(DB.map(async (h) => [h, await sh(h, 'systemctl show -p MainPID --value etcd')] as const)));
    const lines: string[] = [];
    await checked('etcd members restarted one at a time', async (r) => {
      const session = await openSession(ctx.inv);
      try {
        const steps = new Steps((s) => lines.push(s));
        for (const h of DB) {
          await steps.step(`etcd on ${h}`, () => etcdMemberTurn(session, steps, h, () => session.conn(h).run(['env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', '-q', 'install', '-y', '--reinstall', 'etcd-server']).then(() => undefined), 120_000));
        }
        r.note('etcd-server reinstalled on node1..3, one at a time');
      } finally {
        await session.close();
      }
    });
    log(lines.join(''));
    for (const h of DB) {
      assert.notEqual(await sh(h, 'systemctl show -p MainPID --value etcd'), pids[h], `${h}: etcd was restarted`);
      assert.match(lines.join(''), new RegExp(`${h}: etcd runs again; every member healthy, one leader`));
    }
  });

  test('Patroni restarted under maintenance mode (its package reinstalled): PostgreSQL keeps running, 0 lost', async () => {
    const started = Object.fromEntries(await Promise.all(DB.map(async (h) => [h, await psql(h, 'select pg_postmaster_start_time()')] as const)));
    const pids = Object.fromEntries(await Promise.all(DB.map(async (h) => [h, await sh(h, 'systemctl show -p MainPID --value patroni')] as const)));
    await checked('Patroni restarted under pause', async (r) => {
      const session = await openSession(ctx.inv);
      try {
        const lines: string[] = [];
        const steps = new Steps((s) => lines.push(s));
        // A reinstall runs the package's postinst as an upgrade does: it restarts Patroni.
        await patroniUnderPause(session, steps, DB, (h) => session.conn(h).run(['env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', '-q', 'install', '-y', '--reinstall', 'patroni']).then(() => undefined), 120_000);
        log(lines.join(''));
        r.note('patroni reinstalled on node1..3 under pause');
      } finally {
        await session.close();
      }
    });
    for (const h of DB) {
      assert.equal(await psql(h, 'select pg_postmaster_start_time()'), started[h], `${h}: PostgreSQL was not restarted`);
      assert.notEqual(await sh(h, 'systemctl show -p MainPID --value patroni'), pids[h], `${h}: Patroni was restarted`);
    }
    const status = JSON.parse((await pgha(['status', '-i', pinnedNew, '--json'])).stdout) as { paused: boolean };
    assert.equal(status.paused, false, 'maintenance mode is off again');
  });

  test('max_connections changed, pgha restart: a member that does not come back stops it; then every member, 0 lost, one switchover', async (t) => {
    const changed = inventoryWith([[['packages', 'versions'], NEW], [['patroni', 'parameters', 'max_connections'], 250]]);
    const a = await pgha(['apply', '-i', changed], { timeoutMs: 10 * 60_000 });
    assert.equal(a.code, 0, a.stdout + a.stderr);
    assert.match(a.stdout, /^note: pending restart: max_connections takes effect only after PostgreSQL restarts\. `pgha restart -i /m);
    const leader = await leaderName(ctx);
    await until('every member pending a restart', async () => {
      const members = JSON.parse((await pgha(['status', '-i', changed, '--json'])).stdout) as { members: { pending_restart: boolean }[] };
      return members.members.every((m) => m.pending_restart);
    });
    const plan = await pgha(['restart', '-i', changed, '--check']);
    assert.equal(plan.code, 0, plan.stdout + plan.stderr);
    const [first, second] = DB.filter((h) => h !== leader);
    assert.match(plan.stdout, new RegExp(`^  1\\. restart ${first} \\(replica\\); .*\\n  2\\. restart ${second} \\(replica\\); .*\\n  3\\. switch over from ${leader} to a caught-up replica that is done .*\\n  4\\. restart ${leader} \\(the old leader, now a replica\\), unless its demotion already did`, 'm'));
    assert.match(plan.stdout, /^preflight: ok/m);

    // The first replica cannot start PostgreSQL again: the roll stops there, the others untouched.
    const bin = '/usr/lib/postgresql/15/bin/postgres';
    const startedBefore = Object.fromEntries(await Promise.all([second, leader].map(async (h) => [h, await psql(h, 'select pg_postmaster_start_time()')] as const)));
    await sh(first, `sudo chmod a-x ${bin}`);
    try {
      const r = await pgha(['restart', '-i', changed, '--yes', '--timeout', '60'], { timeoutMs: 10 * 60_000 });
      t.diagnostic(`${r.stdout}${r.stderr}`);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, new RegExp(`^pgha: restart ${first} \\(replica\\) failed: Patroni on ${first} answered 503 to POST /restart: restart failed`, 'm'));
      assert.match(r.stderr, new RegExp(`^The roll stopped there; not touched: ${second}, ${leader}\\.$`, 'm'));
    } finally {
      await sh(first, `sudo chmod a+x ${bin}`);
    }
    for (const h of [second, leader]) assert.equal(await psql(h, 'select pg_postmaster_start_time()'), startedBefore[h], `${h} untouched`);
    assert.equal(await leaderName(ctx), leader, 'the leader is unchanged');
    await waitAllStreaming(ctx, 300_000);

    const tl = await timeline();
    await checked('pgha restart (max_connections)', async (r) => {
      const out = await pghaIn(r, ['restart', '-i', changed, '--yes']);
      assert.match(out, /^rolling restart done in [\d.]+s: /m);
    });
    for (const h of DB) assert.equal(await psql(h, 'show max_connections'), '250', h);
    assert.equal(await timeline(), tl + 1, 'exactly one switchover');
    assert.notEqual(await leaderName(ctx), leader);
  });

  test('synchronous_mode: apply --restart-pending with a max_connections change: 0 lost, the synchronous standby becomes the leader', async () => {
    const sync = inventoryWith([[['packages', 'versions'], NEW], [['patroni', 'parameters', 'max_connections'], 250], [['patroni', 'synchronous_mode'], true]]);
    const on = await pgha(['apply', '-i', sync], { timeoutMs: 10 * 60_000 });
    assert.equal(on.code, 0, on.stdout + on.stderr);
    await until('a synchronous standby', async () => (await clusterView(ctx))?.some((m) => m.role === 'sync_standby') === true);
    const changed = inventoryWith([[['packages', 'versions'], NEW], [['patroni', 'parameters', 'max_connections'], 300], [['patroni', 'synchronous_mode'], true]]);
    // Who is the synchronous standby, every 250 ms, for the whole run.
    const seen: { at: number; sync?: string; leader?: string }[] = [];
    let watching = true;
    const watch = (async () => {
      while (watching) {
        const members = await clusterView(ctx);
        seen.push({ at: Date.now(), sync: members?.find((m) => m.role === 'sync_standby')?.name, leader: members?.find((m) => m.role === 'leader' || m.role === 'master')?.name });
        await sleep(250);
      }
    })();
    const tl = await timeline();
    let out = '';
    try {
      await checked('apply --restart-pending (synchronous_mode)', async (r) => {
        out = await pghaIn(r, ['apply', '-i', changed, '--restart-pending']);
      });
    } finally {
      watching = false;
      await watch;
    }
    for (const h of DB) assert.equal(await psql(h, 'show max_connections'), '300', h);
    assert.equal(await timeline(), tl + 1, 'exactly one switchover');
    const taker = /^ {2}(node\d) takes over after [\d.]+s: the synchronous standby$/m.exec(out)?.[1];
    assert.ok(taker, out);
    const changedAt = seen.findIndex((s, i) => i > 0 && s.leader && seen[0].leader && s.leader !== seen[0].leader);
    assert.ok(changedAt > 0, 'the leader changed while watched');
    const lastSync = seen.slice(0, changedAt).reverse().find((s) => s.sync)?.sync;
    assert.equal(seen[changedAt].leader, taker);
    assert.equal(lastSync, taker, 'the member that took over was the synchronous standby just before');
  });

  test('back to the lab inventory with apply --restart-pending: max_connections goes down, so the leader restarts first, in place', async () => {
    // A replica may not run a lower max_connections than its primary (Patroni starts it with the
    // primary's): the primary restarts with the new value first, then the replicas.
    const r = await pgha(['apply', '-i', inventory, '--restart-pending'], { timeoutMs: 10 * 60_000 });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^ {2}1\. restart node\d \(the leader\) in place first: max_connections goes down \(300 -> 200\), and a replica cannot run with less than its primary/m);
    assert.match(r.stdout, /^restart pending done in [\d.]+s: node\d, node\d, node\d$/m);
    for (const h of DB) assert.equal(await psql(h, 'show max_connections'), '200', h);
    assert.match(await sh('node1', 'cat /etc/apt/preferences.d/pgha.pref'), /^# No version is pinned\.$/m);
    assert.equal((await pgha(['verify', '-i', inventory])).code, 0);
  });
});

async function until(what: string, fn: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await fn().catch(() => false)) return;
    await sleep(1000);
  }
  assert.fail(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
}
