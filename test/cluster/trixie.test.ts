// Debian 13 (trixie) on the lab: the subset of the suite that runs on both releases, on one
// cluster of Debian 13 machines (PostgreSQL 17, Patroni 4.0.7, etcd 3.5, HAProxy 3.0, pgBackRest
// 2.55): from bare machines to a verified cluster, apply again (0 changed), hosts of two releases
// refused, status, a switchover, the leader partitioned under a writer (0 acknowledged writes lost:
// Patroni 4's etcd3 DCS, without 3.0.2's bug), a backup and a point-in-time restore (exact rows).
// Its own lab (test/lab/trixie-lab.ts), so the default Debian 12 lab stays as it is; taken down at
// the end.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { useTrixieLab } from '../lab/trixie-lab.js';

// The lab reads its settings from the environment at every call: set before anything runs.
useTrixieLab();

const lab = await import('../lab/lab.js');
const { pgha, recap } = await import('../helpers.js');
const { faultContext, partitionLeader, runScenario, waitAllStreaming } = await import('../faults/suite.js');
const { assertArchiveCommandAsksLeaderKey, archiveNow, DB, etcdctl, leader, members, patroniGet, processIdentity, psql, sh, sleep, verified: verifiedOn } = await import('./lab-cluster.js');
const { CA_BUNDLE, certFile, keyFile } = await import('../../src/components/tls/paths.js');

const timings: string[] = [];
let inventory: string;
const verified = () => verifiedOn(inventory);

describe('Debian 13 (trixie) on the lab', { timeout: 60 * 60_000 }, () => {
  before(async () => {
    const t = Date.now();
    await lab.down();
    await lab.up(4, (s) => console.log(`# ${s}`));
    timings.push(`lab up (4 Debian 13 machines${(Date.now() - t) > 60_000 ? ', base image built' : ''}): ${((Date.now() - t) / 1000).toFixed(1)}s`);
    inventory = lab.labInventoryPath();
  });

  after(async () => {
    process.stdout.write(`# measured on the Debian 13 lab:\n${timings.map((t) => `#   ${t}\n`).join('')}`);
    await lab.down();
  });

  test('from bare Debian 13 machines to a verified cluster: PostgreSQL 17, Patroni 4.0.7 on etcd3, etcd 3.5 without v2, HAProxy 3.0, pgBackRest 2.55', async () => {
    const r = await pgha(['apply', '-i', inventory]);
    timings.push(`deploy: bare machines to verified: ${(r.ms / 1000).toFixed(1)}s`);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^Debian 13 \(trixie\) on every host: PostgreSQL 17 \(the release's default\)$/m);
    assert.match(r.stdout, /^Patroni 4\.0\.7[^:]*: DCS etcd3$/m);
    assert.match(r.stdout, /^timing balanced: ttl 20 s, loop_wait 2 s, retry_timeout 5 s \(Patroni 4\.0\.7 raises the profile's ttl 12 s: from Patroni 3\.2 on ttl is at least 20 s\); an unplanned failover takes about /m);
    assert.match(r.stdout, /^note: Patroni 4\.0\.7 runs with ttl 20 s, loop_wait 2 s, retry_timeout 5 s, not the balanced profile's ttl 12 s/m);
    const verify = r.stdout.slice(r.stdout.indexOf('VERIFY'));
    assert.match(verify, /^ok +etcd: 3 members healthy, leader node\d/m);
    assert.match(verify, /^ok +patroni: leader node\d; 2 replica\(s\) streaming/m);
    for (const h of DB) assert.match(verify, new RegExp(`^ok +haproxy \\(${h}\\): port 5000: write\\+read on node\\d; port 5001: replica`, 'm'));
    assert.match(verify, /^ok +pgbackrest \(node4\): stanza main ok, [1-9]\d* backup\(s\)/m);

    // What runs is Debian 13's, and the release's PostgreSQL major.
    const version = async (h: string, pkg: string) => sh(h, `dpkg-query -W -f '\${Version}' ${pkg}`);
    assert.match(await version('node1', 'patroni'), /^4\.0\.7-/);
    assert.match(await version('node1', 'etcd-server'), /^3\.5\./);
    assert.match(await version('node1', 'haproxy'), /^3\.0\./);
    assert.match(await version('node1', 'pgbackrest'), /^2\.55\./);
    assert.match(await version('node4', 'pgbackrest'), /^2\.55\./);
    assert.match(await psql('node1', 'show server_version_num'), /^17\d{4}$/);
    // Debian's own 17/main was never created.
    for (const h of DB) assert.equal(await sh(h, 'test -e /etc/postgresql/17/main && echo yes || echo no'), 'no');

    // Nothing depends on etcd's v2 API: not enabled, not answering, and Patroni's DCS is etcd3.
    for (const h of DB) {
      assert.doesNotMatch(await sh(h, 'cat /etc/default/etcd'), /ENABLE_V2/);
      // Over TLS, with the member's client certificate: etcd answers, but not on the v2 API.
      const v2 = await sh(h, `sudo curl -s -o /dev/null -w '%{http_code}' --cacert ${CA_BUNDLE} --cert ${certFile('etcd')} --key ${keyFile('etcd')} https://${lab.machineAddress(h)}:2379/v2/keys/`);
      assert.equal(v2, '404', `${h}: etcd's v2 API answers`);
    }
    assert.match(await sh('node1', 'sudo cat /etc/patroni/config.yml'), /^etcd3:$/m);

    // HAProxy 3.0's own check of the config pgha wrote: valid (exit 0), and not one warning or
    // alert. From 2.9 on `haproxy -c` prints nothing when the file is valid (2.6 said
    // "Configuration file is valid"), so any output at all is a warning.
    for (const h of DB) {
      const c = await lab.ssh(h, 'sudo haproxy -c -f /etc/haproxy/haproxy.cfg 2>&1');
      assert.equal(c.code, 0, `${h}: ${c.stdout}`);
      assert.equal(c.stdout.trim(), '', `${h}: haproxy -c: ${c.stdout}`);
    }

    // The profile as Patroni 4 runs it: ttl 20 in the dynamic configuration, and the leader key's lease granted 20 s.
    const cfg = JSON.parse(await patroniGet('node1', '/config')) as Record<string, number>;
    assert.deepEqual([cfg.ttl, cfg.loop_wait, cfg.retry_timeout], [20, 2, 5]);
    // The lease id is 64-bit: read it from the text, a JSON number would lose digits.
    const leaseId = /"lease":(\d+)/.exec(await etcdctl('node1', 'get /service/lab/leader -w json', DB))?.[1];
    assert.ok(leaseId, 'the leader key has a lease');
    const lease = await etcdctl('node1', `lease timetolive ${BigInt(leaseId).toString(16)}`, DB);
    assert.match(lease, /granted with TTL\(20s\)/, lease);

    // A new cluster archives from its first segment on: not one failed archive_command.
    const st = JSON.parse((await pgha(['status', '-i', inventory, '--json'])).stdout) as { backups: { archiving: { failed_count: number } } };
    assert.equal(st.backups.archiving.failed_count, 0);
  });

  test('a second apply changes nothing and restarts nothing', async () => {
    const before = await processIdentity();
    const r = await pgha(['apply', '-i', inventory]);
    timings.push(`no-op apply: ${(r.ms / 1000).toFixed(1)}s`);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const counts = recap(r.stdout);
    assert.deepEqual([...counts.keys()].sort(), ['node1', 'node2', 'node3', 'node4']);
    for (const [host, c] of counts) assert.equal(c.changed, 0, `${host} changed ${c.changed}:\n${r.stdout}`);
    assert.doesNotMatch(r.stdout, /ran handler/);
    assert.deepEqual(await processIdentity(), before);
  });

  test('hosts of two Debian releases are refused before anything changes (exit 2)', async () => {
    // node4 says it is Debian 12 (its os-release replaced for this test, put back after).
    await sh('node4', "sudo sh -c 'cp -P /etc/os-release /etc/os-release.pgha-test && rm /etc/os-release && sed -e s/trixie/bookworm/g -e s/13/12/g /usr/lib/os-release >/etc/os-release'");
    try {
      const r = await pgha(['apply', '-i', inventory]);
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.match(r.stderr, /the hosts run different Debian releases: Debian 13 \(trixie\) on node1, node2, node3; Debian 12 \(bookworm\) on node4\. /);
      assert.match(r.stderr, /see "From Debian 12 to Debian 13" in pgha's README/);
      assert.doesNotMatch(r.stdout, /== stage/);
    } finally {
      await sh('node4', "sudo sh -c 'rm /etc/os-release && mv /etc/os-release.pgha-test /etc/os-release'");
    }
    assert.match(await sh('node4', 'cat /etc/os-release'), /VERSION_CODENAME=trixie/);
  });

  test('pgha status: Patroni 4 roles normalized, and the timing it really runs with', async () => {
    const r = await pgha(['status', '-i', inventory, '--json']);
    timings.push(`pgha status: ${(r.ms / 1000).toFixed(1)}s`);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const s = JSON.parse(r.stdout) as {
      verdict: string;
      members: { name: string; role: string; state: string; patroni_state: string }[];
      timing: { profile: string; patroni_versions: string[]; ttl: number; loop_wait: number; retry_timeout: number; asked: { ttl: number } | null; unplanned_failover: string };
    };
    assert.equal(s.verdict, 'healthy');
    assert.deepEqual(s.members.map((m) => m.role).sort(), ['leader', 'replica', 'replica']);
    for (const m of s.members.filter((x) => x.role === 'replica')) assert.deepEqual([m.state, m.patroni_state], ['streaming', 'streaming']);
    assert.deepEqual(
      { profile: s.timing.profile, versions: s.timing.patroni_versions, t: [s.timing.ttl, s.timing.loop_wait, s.timing.retry_timeout], asked: s.timing.asked?.ttl },
      { profile: 'balanced', versions: ['4.0.7'], t: [20, 2, 5], asked: 12 },
    );
    assert.match(s.timing.unplanned_failover, /measured on the lab/);
    const text = await pgha(['status', '-i', inventory]);
    assert.match(text.stdout, /^timing balanced: ttl 20 s, loop_wait 2 s, retry_timeout 5 s \(Patroni 4\.0\.7 raises the profile's ttl 12 s/m);
  });

  test('pgha switchover to a named replica: done end to end', async () => {
    const old = await leader();
    const candidate = DB.find((h) => h !== old)!;
    const r = await pgha(['switchover', '-i', inventory, '--candidate', candidate, '--yes']);
    timings.push(`switchover (pgha switchover, end to end incl. the old leader streaming): ${(r.ms / 1000).toFixed(1)}s`);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`^switchover done: ${old} -> ${candidate} in [\\d.]+s$`, 'm'));
    assert.match(r.stdout, new RegExp(`^ {2}${old} streams from ${candidate} after `, 'm'));
    assert.equal(await leader(), candidate);
    await verified();
  });

  test('the leader partitioned for longer than ttl under a writer: 0 acknowledged writes lost, the old leader rejoins', async () => {
    const ctx = await faultContext(inventory, (s) => console.log(`# ${s.replace(/\n/g, '\n# ')}`));
    assert.equal(ctx.ttl, 20, 'the ttl Patroni 4 runs with');
    await waitAllStreaming(ctx, 300_000);
    const { result, verifyOut } = await runScenario(ctx, '1. partition leader (Debian 13)', partitionLeader(ctx));
    timings.push(`leader partitioned: write unavailability ${result.unavailabilityS.toFixed(1)}s, ${result.acknowledged} writes acknowledged, all streaming again after ${result.streamAgainS}s (${result.notes})`);
    assert.equal(result.lost, 0, `acknowledged writes lost: ${result.problems.join('; ')}`);
    assert.equal(result.duplicated, 0);
    assert.equal(result.doublePrimary, 0, result.problems.join('; '));
    assert.ok(result.acknowledged > 0, 'no write acknowledged');
    assert.doesNotMatch(result.notes, /scenario error/, result.notes);
    assert.ok(result.verified, verifyOut);
    assert.notEqual(result.leaderAfter, result.leaderBefore);
    assert.deepEqual(result.problems, []);
    // ttl 20 is in effect, not the profile's 12: the lock outlives the cut leader by at least ttl - loop_wait.
    assert.ok(result.unavailabilityS >= 17, `writes came back after ${result.unavailabilityS} s: less than ttl 20 - loop_wait 2 allows`);
  });

  test('a full backup, then a point-in-time restore of the whole cluster: rows before the target on every member, none after', async () => {
    const b = await pgha(['backup', '-i', inventory]);
    timings.push(`full backup (pgha backup, small database): ${(b.ms / 1000).toFixed(1)}s`);
    assert.equal(b.code, 0, b.stdout + b.stderr);
    assert.match(b.stdout, /^backup \d{8}-\d{6}F \(full\) done$/m);

    const L = await leader();
    const tlBefore = (await members()).find((m) => m.name === L)!.timeline!;
    await psql(L, "drop table if exists drill; create table drill (id int primary key, phase text); insert into drill select g, 'A' from generate_series(1, 100) g");
    await archiveNow(L);
    const T = await psql(L, 'select now()');
    await sleep(1500);
    await psql(L, "insert into drill select g, 'B' from generate_series(101, 200) g");
    await archiveNow(L);

    const r = await pgha(['restore', '-i', inventory, '--to', T, '--yes']);
    timings.push(`point-in-time restore of the whole cluster (incl. a full backup): ${(r.ms / 1000).toFixed(1)}s`);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    // etcd3: the cluster's keys removed from the v3 keyspace (etcd 3.5's etcdctl), never the v2 store.
    assert.match(r.stdout, /^==> remove the cluster's state from the DCS \(etcd v3, \/service\/lab\)/m);
    assert.match(r.stdout, /promoted on timeline \d+/);
    assert.match(r.stdout, /^ok +patroni: leader node\d; 2 replica\(s\) streaming/m);
    assert.doesNotMatch(r.stdout, /FAILED/);

    const ms = await members();
    const leaders = ms.filter((m) => m.role === 'leader');
    assert.equal(leaders.length, 1, JSON.stringify(ms));
    assert.ok(leaders[0].timeline! > tlBefore, `timeline ${leaders[0].timeline} after ${tlBefore}`);
    const nl = leaders[0].name;
    const lsn = await psql(nl, 'select pg_current_wal_lsn()');
    for (const h of DB) {
      if (h !== nl) {
        for (let i = 0; i < 30 && (await psql(h, `select pg_last_wal_replay_lsn() >= '${lsn}'`)) !== 't'; i++) await sleep(1000);
      }
      assert.equal(await psql(h, "select count(*) filter (where phase = 'A') || '|' || count(*) filter (where phase = 'B') || '|' || sum(id) from drill"), '100|0|5050', h);
    }
    await verified();
  });

  test('archive_command asks etcd3 (its v3 gateway) who holds the leader key: the leader pushes a whole segment, a replica is told "not archived yet"', async () => {
    await assertArchiveCommandAsksLeaderKey();
  });
});
