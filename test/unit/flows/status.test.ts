// pgha status's verdict and JSON assembly, and switchover's pre-checks, from outputs captured on
// the lab (Patroni 3.0.2 GET /cluster, HAProxy 2.6 stats CSV abridged to its first 19 columns,
// etcdctl 3.4 as etcdState returns it, pgBackRest 2.45 info --output=json, the status psql query).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assembleStatus, type StatusInputs } from '../../../src/flows/status/model.js';
import { formatStatus } from '../../../src/flows/status/format.js';
import { leaderOf as runningLeader, normalizeRole, type PatroniCluster } from '../../../src/components/patroni/cluster.js';
import { parseHaproxyCsv } from '../../../src/components/haproxy/state.js';
import { parseInfo } from '../../../src/components/pgbackrest/info.js';
import { checkSwitchover, parseAt } from '../../../src/components/patroni/checks.js';
import { EXIT, PghaError } from '../../../src/errors.js';
import type { Inventory } from '../../../src/inventory/index.js';
import { assertSnakeCase } from '../../helpers.js';
import { parseDataDisk, type DataDisk } from '../../../src/components/patroni/disk.js';

const CLUSTER_HEALTHY = `{"members": [{"name": "node1", "role": "leader", "state": "running", "api_url": "http://10.88.214.11:8008/patroni", "host": "10.88.214.11", "port": 5432, "timeline": 1}, {"name": "node2", "role": "replica", "state": "running", "api_url": "http://10.88.214.12:8008/patroni", "host": "10.88.214.12", "port": 5432, "timeline": 1, "lag": 0}, {"name": "node3", "role": "replica", "state": "running", "api_url": "http://10.88.214.13:8008/patroni", "host": "10.88.214.13", "port": 5432, "timeline": 1, "lag": 0}]}`;
// Patroni stopped on node3 (systemctl stop patroni), a second later.
const CLUSTER_NODE3_STOPPED = `{"members": [{"name": "node1", "role": "leader", "state": "running", "api_url": "http://10.88.214.11:8008/patroni", "host": "10.88.214.11", "port": 5432, "timeline": 1}, {"name": "node2", "role": "replica", "state": "running", "api_url": "http://10.88.214.12:8008/patroni", "host": "10.88.214.12", "port": 5432, "timeline": 1, "lag": 0}, {"name": "node3", "role": "replica", "state": "stopped", "api_url": "http://10.88.214.13:8008/patroni", "host": "10.88.214.13", "port": 5432, "lag": "unknown"}]}`;

const HAPROXY_CSV = `# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight
stats,FRONTEND,,,1,1,1000,5,340,16972,0,0,0,,,,,OPEN,
stats,BACKEND,0,0,0,0,100,0,340,16972,0,0,,0,0,0,0,UP,0
primary,FRONTEND,,,0,1,1000,1,371,719,0,0,0,,,,,OPEN,
primary,node1,0,0,0,1,,1,371,719,,0,,0,0,0,0,UP,1
primary,node2,0,0,0,0,,0,0,0,,0,,0,0,0,0,DOWN,1
primary,node3,0,0,0,0,,0,0,0,,0,,0,0,0,0,DOWN,1
primary,BACKEND,0,0,0,1,100,1,371,719,0,0,,0,0,0,0,UP,1
replicas,FRONTEND,,,0,1,1000,1,298,700,0,0,0,,,,,OPEN,
replicas,node1,0,0,0,0,,0,0,0,,0,,0,0,0,0,DOWN,1
replicas,node2,0,0,0,1,,1,298,700,,0,,0,0,0,0,UP,1
replicas,node3,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP,1
replicas,BACKEND,0,0,0,1,100,1,298,700,0,0,,0,0,0,0,UP,2
`;
// Seen right after a switchover to node2, before HAProxy's checks caught up.
const HAPROXY_CSV_AFTER_SWITCHOVER = HAPROXY_CSV.replace('primary,node1,0,0,0,1,,1,371,719,,0,,0,0,0,0,UP', 'primary,node1,0,0,0,1,,1,371,719,,0,,0,0,0,0,DOWN').replace(
  'primary,node2,0,0,0,0,,0,0,0,,0,,0,0,0,0,DOWN',
  'primary,node2,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP',
);

const PGBACKREST_INFO = `[{"archive":[{"database":{"id":1,"repo-key":1},"id":"15-1","max":"000000010000000000000007","min":"000000010000000000000001"}],"backup":[{"archive":{"start":"000000010000000000000005","stop":"000000010000000000000006"},"backrest":{"format":5,"version":"2.45"},"database":{"id":1,"repo-key":1},"error":false,"info":{"delta":23265041,"repository":{"delta":3084840,"size":3084840},"size":23265041},"label":"20261122-053610F","lsn":{"start":"0/5000028","stop":"0/6000088"},"prior":null,"reference":null,"timestamp":{"start":1795325770,"stop":1795325778},"type":"full"}],"cipher":"none","db":[{"id":1,"repo-key":1,"system-id":7710865278548818799,"version":"15"}],"name":"main","repo":[{"cipher":"none","key":1,"status":{"code":0,"message":"ok"}}],"status":{"code":0,"lock":{"backup":{"held":false}},"message":"ok"}}]`;
const PGBACKREST_NO_BACKUP = `[{"archive":[],"backup":[],"cipher":"none","db":[{"id":1,"repo-key":1,"system-id":7710865278548818799,"version":"15"}],"name":"main","repo":[{"cipher":"none","key":1,"status":{"code":2,"message":"no valid backups"}}],"status":{"code":2,"lock":{"backup":{"held":false}},"message":"no valid backups"}}]`;

// The leader's answer to status's psql query: six archive failures from before the stanza existed, then success.
const LOCAL_LEADER = `{"in_recovery" : false, "archiver" : {"last_archived_wal":"000000010000000000000007","last_archived_time":"2026-11-22T05:36:27.957232+00:00","failed_count":6,"last_failed_wal":"000000010000000000000001","last_failed_time":"2026-11-22T05:35:32.994198+00:00"}, "replication" : [{"name" : "node3", "state" : "streaming", "sync_state" : "async"}, {"name" : "node2", "state" : "streaming", "sync_state" : "async"}]}`;
const LOCAL_REPLICA = `{"in_recovery" : true, "archiver" : {"last_archived_wal":null,"last_archived_time":null,"failed_count":0,"last_failed_wal":null,"last_failed_time":null}, "replication" : []}`;

const ETCD_HEALTHY = [
  { name: 'node1', endpoint: 'http://10.88.214.11:2379', healthy: true, leader: false },
  { name: 'node2', endpoint: 'http://10.88.214.12:2379', healthy: true, leader: true },
  { name: 'node3', endpoint: 'http://10.88.214.13:2379', healthy: true, leader: false },
];

// GET /patroni of the leader and of a replica (3.0.2 calls the leader "master" here).
const SELF_LEADER = `{"state": "running", "postmaster_start_time": "2026-11-22 05:35:29.505069+00:00", "role": "master", "server_version": 150020, "xlog": {"location": 167772256}, "timeline": 2, "replication": [{"usename": "replicator", "application_name": "node3", "client_addr": "10.88.214.13", "state": "streaming", "sync_state": "async", "sync_priority": 0}, {"usename": "replicator", "application_name": "node1", "client_addr": "10.88.214.11", "state": "streaming", "sync_state": "async", "sync_priority": 0}], "dcs_last_seen": 1795326280, "database_system_identifier": "7710865278548818799", "patroni": {"version": "3.0.2", "scope": "lab"}}`;
const SELF_REPLICA = `{"state": "running", "postmaster_start_time": "2026-11-22 05:43:54.783583+00:00", "role": "replica", "server_version": 150020, "xlog": {"received_location": 167772256, "replayed_location": 167772256, "replayed_timestamp": "2026-11-22 05:43:36.762078+00:00", "paused": false}, "timeline": 2, "dcs_last_seen": 1795326284, "database_system_identifier": "7710865278548818799", "patroni": {"version": "3.0.2", "scope": "lab"}}`;

const NOW = Date.parse('2026-11-22T05:37:20.026Z');

function inputs(over: Partial<StatusInputs> = {}): StatusInputs {
  const cluster = JSON.parse(CLUSTER_HEALTHY) as PatroniCluster;
  const servers = parseHaproxyCsv(HAPROXY_CSV);
  return {
    cluster: 'lab',
    now: NOW,
    hosts: [1, 2, 3, 4].map((i) => ({ name: `node${i}`, address: `10.88.214.1${i}`, roles: i === 4 ? ['backup_repository'] : ['etcd', 'postgres', 'haproxy'] })),
    postgres: ['node1', 'node2', 'node3'],
    etcdHosts: ['node1', 'node2', 'node3'],
    haproxyHosts: ['node1', 'node2', 'node3'],
    maximumLagOnFailover: 1048576,
    stanza: 'main',
    patroni: { node1: { ok: cluster }, node2: { ok: cluster }, node3: { ok: cluster } },
    patroniSelf: { node1: { ok: JSON.parse(SELF_LEADER) }, node2: { ok: JSON.parse(SELF_REPLICA) }, node3: { ok: JSON.parse(SELF_REPLICA) } },
    local: { node1: { ok: JSON.parse(LOCAL_LEADER) }, node2: { ok: JSON.parse(LOCAL_REPLICA) }, node3: { ok: JSON.parse(LOCAL_REPLICA) } },
    etcd: { ok: { from: 'node1', members: ETCD_HEALTHY } },
    haproxy: { node1: { ok: servers }, node2: { ok: servers }, node3: { ok: servers } },
    backups: { ok: parseInfo(PGBACKREST_INFO, 'main') },
    ...over,
  };
}

test('status: a healthy cluster, every section assembled', () => {
  const r = assembleStatus(inputs());
  assert.equal(r.verdict, 'healthy');
  assert.deepEqual(r.reasons, []);
  assert.equal(r.cluster, 'lab');
  assert.equal(r.leader, 'node1');
  assert.deepEqual(
    r.members.map((m) => [m.name, m.host, m.role, m.state, m.patroni_state, m.timeline, m.lag_bytes]),
    [
      ['node1', '10.88.214.11', 'leader', 'running', 'running', 1, 0],
      ['node2', '10.88.214.12', 'replica', 'streaming', 'running', 1, 0],
      ['node3', '10.88.214.13', 'replica', 'streaming', 'running', 1, 0],
    ],
  );
  assert.deepEqual(r.etcd, [
    { name: 'node1', healthy: true, leader: false },
    { name: 'node2', healthy: true, leader: true },
    { name: 'node3', healthy: true, leader: false },
  ]);
  assert.deepEqual(
    r.haproxy.map((h) => [h.name, h.reachable, h.primary, h.replicas]),
    ['node1', 'node2', 'node3'].map((n) => [n, true, ['node1'], ['node2', 'node3']]),
  );
  assert.deepEqual(r.backups.last_full, { label: '20261122-053610F', time: '2026-11-22T05:36:18.000Z', age_seconds: 62 });
  assert.equal(r.backups.last_diff, null);
  assert.equal(r.backups.archiving?.last_archived_wal, '000000010000000000000007');
  assert.equal(r.backups.archiving?.failed_count, 6);
  assert.equal(r.backups.archiving?.failing, false, 'failures older than the last success are history');
  assert.equal(r.backups.repository_wal_max, '000000010000000000000007');
});

test('status JSON: the documented fields, and it round-trips', () => {
  const doc = JSON.parse(JSON.stringify(assembleStatus(inputs())));
  for (const key of ['cluster', 'verdict', 'reasons', 'members', 'etcd', 'haproxy', 'backups', 'leader', 'hosts', 'checked_at']) assert.ok(key in doc, key);
  for (const m of doc.members) for (const key of ['name', 'host', 'role', 'state', 'timeline', 'lag_bytes', 'patroni_state', 'pending_restart', 'tags']) assert.ok(key in m, key);
  for (const e of doc.etcd) for (const key of ['name', 'healthy', 'leader']) assert.ok(key in e, key);
  for (const key of ['last_full', 'last_diff', 'archiving', 'status']) assert.ok(key in doc.backups, key);
  assertSnakeCase(doc);
});

test('status: Patroni stopped on a replica -> degraded, the reason names it', () => {
  const stopped = JSON.parse(CLUSTER_NODE3_STOPPED) as PatroniCluster;
  const local = { ...inputs().local, node1: { ok: { ...JSON.parse(LOCAL_LEADER), replication: [{ name: 'node2', state: 'streaming', sync_state: 'async' }] } }, node3: { error: 'psql: connection refused' } };
  const r = assembleStatus(inputs({ patroni: { node1: { ok: stopped }, node2: { ok: stopped }, node3: { error: 'curl: (7) Failed to connect' } }, local }));
  assert.equal(r.verdict, 'degraded');
  assert.deepEqual(r.reasons, ['node3 is stopped']);
  const m = r.members.find((x) => x.name === 'node3')!;
  assert.equal(m.state, 'stopped');
  assert.equal(m.lag_bytes, null);
});

test('status: a member gone from the DCS is listed as absent', () => {
  const c = JSON.parse(CLUSTER_HEALTHY) as PatroniCluster;
  c.members = c.members.filter((m) => m.name !== 'node3');
  const r = assembleStatus(inputs({ patroni: { node1: { ok: c }, node2: { ok: c }, node3: { error: 'refused' } } }));
  assert.equal(r.verdict, 'degraded');
  assert.equal(r.members.find((m) => m.name === 'node3')?.state, 'absent');
  assert.match(r.reasons.join('\n'), /node3 is not a Patroni member/);
});

test('status: a running replica the leader does not see streaming is "running", not "streaming"', () => {
  const local = { ...inputs().local, node1: { ok: { ...JSON.parse(LOCAL_LEADER), replication: [{ name: 'node2', state: 'streaming', sync_state: 'async' }] } } };
  const r = assembleStatus(inputs({ local }));
  assert.equal(r.verdict, 'degraded');
  assert.equal(r.members.find((m) => m.name === 'node3')?.state, 'running');
  assert.match(r.reasons.join('\n'), /node3 is running but does not stream from the leader node1/);
});

test('status: an unreachable host is reported and degrades, the rest is still assembled', () => {
  const base = inputs();
  const why = 'cannot connect to 10.88.214.13:22: timed out after 3s (host down, firewalled or wrong address?)';
  const r = assembleStatus(
    inputs({
      hosts: base.hosts.map((h) => (h.name === 'node3' ? { ...h, unreachable: why } : h)),
      haproxy: { ...base.haproxy, node3: { error: `unreachable: ${why}` } },
      patroni: { ...base.patroni, node3: { error: `unreachable: ${why}` } },
      etcd: { ok: { from: 'node1', members: ETCD_HEALTHY.map((m) => (m.name === 'node3' ? { ...m, healthy: false, error: 'context deadline exceeded' } : m)) } },
    }),
  );
  assert.equal(r.verdict, 'degraded');
  assert.equal(r.reasons[0], `host node3 is unreachable: ${why}`);
  assert.match(r.reasons.join('\n'), /etcd member node3 is not healthy/);
  assert.deepEqual(r.hosts.find((h) => h.name === 'node3'), { name: 'node3', address: '10.88.214.13', reachable: false, error: why });
  assert.equal(r.haproxy.find((h) => h.name === 'node3')?.reachable, false);
  assert.equal(r.members.find((m) => m.name === 'node3')?.reachable, false);
  assert.equal(r.leader, 'node1');
});

test('status: down without a leader, without any Patroni answer, or without etcd quorum', () => {
  const noLeader = JSON.parse(CLUSTER_HEALTHY) as PatroniCluster;
  noLeader.members[0].state = 'stopped';
  let r = assembleStatus(inputs({ patroni: { node1: { ok: noLeader }, node2: { ok: noLeader }, node3: { ok: noLeader } } }));
  assert.equal(r.verdict, 'down');
  assert.match(r.reasons[0], /^no running leader/);
  assert.equal(r.leader, null);

  r = assembleStatus(inputs({ patroni: { node1: { error: 'a' }, node2: { error: 'b' }, node3: { error: 'c' } }, patroniSelf: { node1: { error: 'x' }, node2: { error: 'y' }, node3: { error: 'z' } } }));
  assert.equal(r.verdict, 'down');
  assert.match(r.reasons.join('\n'), /no Patroni REST API answers \(node1: a; node2: b; node3: c\)/);

  r = assembleStatus(inputs({ etcd: { ok: { from: 'node1', members: ETCD_HEALTHY.map((m) => ({ ...m, healthy: m.name === 'node1', leader: false })) } } }));
  assert.equal(r.verdict, 'down');
  assert.match(r.reasons[0], /etcd has no quorum: 1 of 3 members healthy \(needs 2\)/);
});

test('status: no GET /cluster answer (its DCS read hangs) -> members from each GET /patroni', () => {
  const slow = { error: 'GET http://10.88.214.12:8008/cluster from node2: curl: (28) Operation timed out after 3000 milliseconds with 0 bytes received' };
  const self = { node1: { ok: JSON.parse(SELF_LEADER) }, node2: { ok: JSON.parse(SELF_REPLICA.replace('"replayed_location": 167772256', '"replayed_location": 167772000')) }, node3: { ok: JSON.parse(SELF_REPLICA) } };
  const r = assembleStatus(inputs({ patroni: { node1: slow, node2: slow, node3: slow }, patroniSelf: self }));
  assert.equal(r.verdict, 'degraded');
  assert.deepEqual(r.reasons, ["Patroni's cluster view (GET /cluster) did not answer in time on any member: members as each reports itself"]);
  assert.equal(r.leader, 'node1');
  assert.deepEqual(
    r.members.map((m) => [m.name, m.role, m.state, m.patroni_state, m.timeline, m.lag_bytes]),
    [
      ['node1', 'leader', 'running', 'running', 2, 0],
      ['node2', 'replica', 'streaming', 'running', 2, 256],
      ['node3', 'replica', 'streaming', 'running', 2, 0],
    ],
  );
});

test('status: HAProxy routing the primary port elsewhere than the leader -> degraded', () => {
  const after = parseHaproxyCsv(HAPROXY_CSV_AFTER_SWITCHOVER);
  const r = assembleStatus(inputs({ haproxy: { ...inputs().haproxy, node2: { ok: after } } }));
  assert.equal(r.verdict, 'degraded');
  assert.deepEqual(r.reasons, ['HAProxy on node2 routes the primary port to [node2], the leader is node1']);
});

test('status: no backup, failing archiving, a lagging replica -> degraded with each reason', () => {
  const lagging = JSON.parse(CLUSTER_HEALTHY) as PatroniCluster;
  lagging.members[2].lag = 50_000_000;
  const leader = JSON.parse(LOCAL_LEADER);
  leader.archiver.failed_count = 7;
  leader.archiver.last_failed_wal = '000000010000000000000008';
  leader.archiver.last_failed_time = '2026-11-22T05:37:00.000000+00:00';
  const r = assembleStatus(
    inputs({
      backups: { ok: parseInfo(PGBACKREST_NO_BACKUP, 'main') },
      local: { ...inputs().local, node1: { ok: leader } },
      patroni: { node1: { ok: lagging }, node2: { ok: lagging }, node3: { ok: lagging } },
    }),
  );
  assert.equal(r.verdict, 'degraded');
  assert.deepEqual(r.reasons, [
    'node3 lags 50000000 bytes (more than maximum_lag_on_failover 1048576)',
    'no full backup in stanza main',
    'WAL archiving fails on the leader node1: last failure 000000010000000000000008 at 2026-11-22T05:37:00.000000+00:00 (7 failures)',
  ]);
  assert.equal(r.backups.archiving?.failing, true);
  assert.equal(r.backups.last_full, null);
});

test('status: roles and states of later Patroni versions are normalized, the raw state kept', () => {
  assert.equal(normalizeRole('master'), 'leader');
  assert.equal(normalizeRole('primary'), 'leader');
  assert.equal(normalizeRole('leader'), 'leader');
  assert.equal(normalizeRole('sync_standby'), 'sync_standby');
  assert.equal(normalizeRole('replica'), 'replica');
  const v4 = JSON.parse(CLUSTER_HEALTHY.replace('"role": "leader"', '"role": "primary"').replace(/"role": "replica", "state": "running"/g, '"role": "replica", "state": "streaming"')) as PatroniCluster;
  const r = assembleStatus(inputs({ patroni: { node1: { ok: v4 }, node2: { ok: v4 }, node3: { ok: v4 } } }));
  assert.equal(r.verdict, 'healthy');
  assert.deepEqual(
    r.members.map((m) => [m.role, m.state, m.patroni_state]),
    [
      ['leader', 'running', 'running'],
      ['replica', 'streaming', 'streaming'],
      ['replica', 'streaming', 'streaming'],
    ],
  );
});

test('status text: aligned plain text without a terminal, colors on one', () => {
  const r = assembleStatus(inputs());
  const plain = formatStatus(r);
  assert.doesNotMatch(plain, /\x1b\[/);
  assert.match(plain, /^cluster lab: HEALTHY/);
  assert.match(plain, /^node2 +10\.88\.214\.12 +replica +streaming \(running\) +1 +0 +-$/m);
  assert.match(plain, /^ {2}last full {2}20261122-053610F/m);
  assert.match(formatStatus(r, { color: true }), /\x1b\[32mHEALTHY\x1b\[39m/);
  const degraded = formatStatus(assembleStatus(inputs({ backups: { ok: parseInfo(PGBACKREST_NO_BACKUP, 'main') } })));
  assert.match(degraded, /^DEGRADED because:\n {2}- no full backup in stanza main$/m);
});

// ---------------------------------------------------------------- switchover pre-checks

const inv = { cluster: { name: 'lab' }, patroni: { maximum_lag_on_failover: 1048576 }, hostsWithRole: () => ['node1', 'node2', 'node3'].map((name) => ({ name })) } as unknown as Inventory;
// Who the leader sees streaming; a null lag: not measured, Patroni's figure counts.
const streamingOf = (...names: string[]) => new Map(names.map((n) => [n, null]));
const streamingAll = streamingOf('node2', 'node3');
const exitOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof PghaError, String(err));
    return { code: err.exitCode, message: err.message };
  }
  assert.fail('no error');
};

test('switchover checks: the leader is found, a healthy candidate passes', () => {
  const c = JSON.parse(CLUSTER_HEALTHY) as PatroniCluster;
  assert.equal(runningLeader(c)?.name, 'node1');
  assert.equal(checkSwitchover(inv, c, 'node2', streamingAll).name, 'node1');
  assert.equal(checkSwitchover(inv, c, undefined, streamingAll).name, 'node1');
});

test('switchover checks: bad candidates are refused with a clear message and exit code', () => {
  const c = JSON.parse(CLUSTER_HEALTHY) as PatroniCluster;
  assert.deepEqual(exitOf(() => checkSwitchover(inv, c, 'node9', streamingAll)), { code: EXIT.badInput, message: 'node9 is not a member of cluster lab; members: node1, node2, node3' });
  assert.deepEqual(exitOf(() => checkSwitchover(inv, c, 'node1', streamingAll)), { code: EXIT.badInput, message: 'node1 is the leader already' });
  const stopped = JSON.parse(CLUSTER_NODE3_STOPPED) as PatroniCluster;
  assert.deepEqual(exitOf(() => checkSwitchover(inv, stopped, 'node3', streamingOf('node2'))), { code: EXIT.failed, message: 'node3 is stopped, not running: it cannot take over' });
  const lagging = JSON.parse(CLUSTER_HEALTHY) as PatroniCluster;
  lagging.members[1].lag = 2_000_000;
  assert.equal(exitOf(() => checkSwitchover(inv, lagging, 'node2', streamingAll)).code, EXIT.failed);
  assert.match(exitOf(() => checkSwitchover(inv, lagging, 'node2', streamingAll)).message, /node2 lags 2000000 bytes, more than maximum_lag_on_failover \(1048576\)/);
  const tagged = JSON.parse(CLUSTER_HEALTHY) as PatroniCluster;
  tagged.members[2].tags = { nofailover: true };
  assert.deepEqual(exitOf(() => checkSwitchover(inv, tagged, 'node3', streamingAll)), { code: EXIT.badInput, message: 'node3 is tagged nofailover: Patroni never promotes it' });
  assert.match(exitOf(() => checkSwitchover(inv, c, 'node3', streamingOf('node2'))).message, /node3 does not stream from the leader/);
  const sync = JSON.parse(CLUSTER_HEALTHY) as PatroniCluster;
  sync.members[1].role = 'sync_standby';
  assert.deepEqual(exitOf(() => checkSwitchover(inv, sync, 'node3', streamingAll)), {
    code: EXIT.failed,
    message: 'node3 is not the synchronous standby (node2 is): in synchronous mode only the synchronous standby can take over without losing acknowledged writes; leave out --candidate, or name it',
  });
  assert.equal(checkSwitchover(inv, sync, 'node2', streamingAll).name, 'node1');
  const paused = { ...c, pause: true };
  assert.match(exitOf(() => checkSwitchover(inv, paused, 'node2', streamingAll)).message, /paused/);
  const none = JSON.parse(CLUSTER_NODE3_STOPPED) as PatroniCluster;
  none.members[1].state = 'stopped';
  assert.match(exitOf(() => checkSwitchover(inv, none, undefined, new Map())).message, /^no replica can take over: node2 is stopped/);
});

test('switchover --at: ISO 8601 with a timezone, in the future', () => {
  const now = Date.parse('2030-01-01T00:00:00Z');
  assert.equal(parseAt('2030-01-31T02:00:00+01:00', now).toISOString(), '2030-01-31T01:00:00.000Z');
  assert.equal(parseAt('2030-01-31T01:00Z', now).toISOString(), '2030-01-31T01:00:00.000Z');
  assert.equal(exitOf(() => parseAt('2030-01-31T01:00:00', now)).code, EXIT.badInput);
  assert.match(exitOf(() => parseAt('tomorrow', now)).message, /expected an ISO 8601 time with a timezone/);
  assert.match(exitOf(() => parseAt('2029-12-31T23:59:00Z', now)).message, /is in the past/);
});

test("status: a replica's lag is the leader's live pg_stat_replication figure (received WAL), Patroni's loop_wait-old figure only without it", () => {
  // Right after a WAL switch Patroni can show a whole segment for every replica until their next loop.
  const stale = JSON.parse(CLUSTER_HEALTHY) as PatroniCluster;
  stale.members[1].lag = 16_715_320;
  stale.members[2].lag = 16_715_320;
  const rows = (node2: number, node3: number) => [
    { name: 'node2', state: 'streaming', sync_state: 'async', lag_bytes: node2 + 100, received_lag_bytes: node2 },
    { name: 'node3', state: 'streaming', sync_state: 'async', lag_bytes: node3 + 100, received_lag_bytes: node3 },
  ];
  const withRows = (node2: number, node3: number) =>
    assembleStatus(
      inputs({
        local: { ...inputs().local, node1: { ok: { ...JSON.parse(LOCAL_LEADER), replication: rows(node2, node3) } } },
        patroni: { node1: { ok: stale }, node2: { ok: stale }, node3: { ok: stale } },
      }),
    );
  const fresh = withRows(0, 0);
  assert.equal(fresh.verdict, 'healthy', fresh.reasons.join('; '));
  assert.deepEqual(fresh.members.map((m) => m.lag_bytes), [0, 0, 0]);
  const behind = withRows(0, 50_000_000);
  assert.equal(behind.verdict, 'degraded');
  assert.deepEqual(behind.reasons, ['node3 lags 50000000 bytes (more than maximum_lag_on_failover 1048576)']);
  // Without the leader's rows (the old fixture), Patroni's figure decides.
  const fallback = assembleStatus(inputs({ patroni: { node1: { ok: stale }, node2: { ok: stale }, node3: { ok: stale } } }));
  assert.equal(fallback.verdict, 'degraded');
});

test('status: certificates listed with their end; one within 30 days, or wrong, degrades naming host and file; tls: false warns', () => {
  const row = (host: string, service: 'ca' | 'etcd' | 'postgres', days: number, problems: string[] = []) => ({
    host,
    service,
    path: service === 'ca' ? '/etc/pgha/tls/ca.crt' : `/etc/pgha/tls/${service}.crt`,
    subject: `CN=${host}`,
    not_after: new Date(NOW + days * 86_400_000 + 3_600_000).toISOString(),
    days_left: days,
    problems,
  });
  const good = (h: string) => ({ ok: [row(h, 'ca', 3600), row(h, 'etcd', 300), row(h, 'postgres', 300)] });
  let r = assembleStatus(inputs({ tls: { enabled: true, certificates: { node1: good('node1'), node2: good('node2'), node3: good('node3') } } }));
  assert.equal(r.verdict, 'healthy', r.reasons.join('; '));
  assert.equal(r.tls.certificates.length, 9);
  assert.deepEqual(r.warnings, []);
  assert.match(formatStatus(r), /^CERTIFICATE +OF +SUBJECT +NOT AFTER +LEFT\nnode1 +ca +CN=node1 +\d{4}-\d\d-\d\d +3600d/m);

  r = assembleStatus(
    inputs({
      tls: {
        enabled: true,
        certificates: {
          node1: good('node1'),
          node2: { ok: [row('node2', 'ca', 3600), row('node2', 'etcd', 12), row('node2', 'postgres', 300)] },
          node3: { ok: [row('node3', 'ca', 3600), row('node3', 'etcd', 300, ['not signed by the cluster CA (issuer: CN=rogue)']), row('node3', 'postgres', 300)] },
        },
      },
    }),
  );
  assert.equal(r.verdict, 'degraded');
  assert.ok(r.reasons.some((x) => /^certificate node2: \/etc\/pgha\/tls\/etcd\.crt: expires in 12 days \(\d{4}-\d\d-\d\d\): pgha tls renew/.test(x)), r.reasons.join('\n'));
  assert.ok(r.reasons.includes('certificate node3: /etc/pgha/tls/etcd.crt: not signed by the cluster CA (issuer: CN=rogue)'), r.reasons.join('\n'));

  r = assembleStatus(inputs({ tls: { enabled: false, certificates: {} } }));
  assert.equal(r.verdict, 'healthy');
  assert.deepEqual(r.warnings, ['TLS is off (tls: false): etcd, Patroni\'s REST API and PostgreSQL speak clear text on the network']);
  assert.match(formatStatus(r), /^WARNING: TLS is off \(tls: false\)/m);
});

// The data disk: `stat -f -c "%S %b %a"` of the data directory as captured on the lab (an 8 GiB
// disk, then filled by `npm run lab -- disk node1 fill`), and the I/O wait of the local SQL.
const DISK_OK = parseDataDisk('4096 2038999 1996102\n');
const DISK_FULL = parseDataDisk('4096 2038999 0\n');
const DISK_91 = parseDataDisk('4096 2038999 183510\n');

test('data disk: the statfs answer read; anything else refused', () => {
  assert.deepEqual(DISK_OK, { size_bytes: 4096 * 2038999, free_bytes: 4096 * 1996102 });
  assert.throws(() => parseDataDisk('stat: cannot read file system information\n'), /unexpected statfs answer/);
  assert.throws(() => parseDataDisk('4096 -1 0'), /unexpected statfs answer/);
});

test("status: the leader's data disk full -> down, said first; a replica's -> degraded; the DISK column", () => {
  const disks = (d1: DataDisk, d2: DataDisk = DISK_OK) => ({ node1: { ok: d1 }, node2: { ok: d2 }, node3: { ok: DISK_OK } });
  const healthy = assembleStatus(inputs({ dataDisk: disks(DISK_OK) }));
  assert.equal(healthy.verdict, 'healthy');
  assert.deepEqual(healthy.members[0].data_disk, DISK_OK);
  assert.match(formatStatus(healthy), /^MEMBER\s+HOST\s+ROLE\s+STATE\s+TL\s+LAG\s+DISK\s+RESTART\s+TAGS$/m);
  assert.match(formatStatus(healthy), /^node1\s+10\.88\.214\.11\s+leader\s+running\s+1\s+0\s+2% \(7\.6 GiB free\)$/m);

  const full = assembleStatus(inputs({ dataDisk: disks(DISK_FULL) }));
  assert.equal(full.verdict, 'down');
  assert.equal(full.reasons[0], 'node1: data disk full (0 MiB free of 7.8 GiB): PostgreSQL refuses every write that needs space; free space or grow the disk');

  const replica = assembleStatus(inputs({ dataDisk: disks(DISK_OK, DISK_FULL) }));
  assert.equal(replica.verdict, 'degraded');
  assert.deepEqual(replica.reasons, ['node2: data disk full (0 MiB free of 7.8 GiB): PostgreSQL cannot store the WAL it receives and falls behind; free space or grow the disk']);

  const nearly = assembleStatus(inputs({ dataDisk: disks(DISK_91) }));
  assert.equal(nearly.verdict, 'degraded');
  assert.deepEqual(nearly.reasons, ['node1: data disk 91% full (717 MiB free of 7.8 GiB)']);
  // An older capture, or a host that did not answer: no disk figure, no verdict from it.
  const unknown = assembleStatus(inputs({ dataDisk: { node1: { error: 'data disk on node1: no answer within 8s' } } }));
  assert.equal(unknown.verdict, 'healthy');
  assert.equal(unknown.members[0].data_disk, null);
});

test('status: a session waiting a second or more on the disk -> degraded, naming the wait', () => {
  const leader = (io_wait: unknown) => ({ ...inputs().local, node1: { ok: { ...JSON.parse(LOCAL_LEADER), archiver: { ...JSON.parse(LOCAL_LEADER).archiver, failed_count: 0 }, io_wait } } });
  const slow = assembleStatus(inputs({ local: leader({ wait_event: 'WALSync', seconds: 2.4 }) }));
  assert.equal(slow.verdict, 'degraded');
  assert.deepEqual(slow.reasons, ['node1: data disk slow: a session has waited 2.4 s on it (WALSync)']);
  assert.deepEqual(slow.members[0].io_wait, { wait_event: 'WALSync', seconds: 2.4 });
  assert.equal(assembleStatus(inputs({ local: leader({ wait_event: 'WALSync', seconds: 0.3 }) })).verdict, 'healthy');
  assert.equal(assembleStatus(inputs({ local: leader(null) })).verdict, 'healthy');
});
