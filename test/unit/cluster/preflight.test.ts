// The preflight's verdict (src/cluster/preflight.ts preflightProblems): every reason not to go
// ahead, naming the member (or part) and why; an empty list is a go.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { preflightProblems, type PreflightInput } from '../../../src/cluster/preflight.js';

const limits = { maxLagBytes: 1048576, maxTransactionAgeSec: 60, backups: true };
const ok = { replayPaused: false, oldest: null };

function healthy(): PreflightInput {
  return {
    postgres: ['node1', 'node2', 'node3'],
    cluster: {
      members: [
        { name: 'node1', role: 'master', state: 'running' },
        { name: 'node2', role: 'replica', state: 'running', lag: 0 },
        { name: 'node3', role: 'replica', state: 'running', lag: 0 },
      ],
    },
    synchronousMode: false,
    replication: [
      { name: 'node2', state: 'streaming', sync_state: 'async', lag_bytes: 0 },
      { name: 'node3', state: 'streaming', sync_state: 'async', lag_bytes: 120 },
    ],
    members: { node1: ok, node2: ok, node3: ok },
    etcd: true,
    backups: {
      info: { stanza: 'main', code: 0, message: 'ok', backupRunning: false, backups: [{ label: '20261201-040014F', error: false } as never] },
      archiver: { failed_count: 0, last_failed_time: null, last_archived_time: '2026-12-01T04:00:18Z', last_failed_wal: null },
    },
  };
}

test('a healthy cluster passes', () => {
  assert.deepEqual(preflightProblems(healthy(), limits), []);
});

test('a replica with its replay paused and lagging: named, with both reasons', () => {
  const inp = healthy();
  inp.members.node3 = { replayPaused: true, oldest: null };
  inp.replication![1].lag_bytes = 5 * 1048576;
  assert.deepEqual(preflightProblems(inp, limits), [
    'node3: lags 5.0 MiB behind node1, more than maximum_lag_on_failover (1.0 MiB)',
    'node3: its WAL replay is paused (select pg_wal_replay_resume() on node3 resumes it)',
  ]);
});

test('replayed WAL counts: a replica that received everything but replays behind is named', () => {
  const inp = healthy();
  inp.replication![1] = { ...inp.replication![1], lag_bytes: 5 * 1048576, received_lag_bytes: 0 };
  assert.deepEqual(preflightProblems(inp, limits), ['node3: lags 5.0 MiB behind node1, more than maximum_lag_on_failover (1.0 MiB)']);
});

test('a long transaction, a member not streaming, a stopped member, etcd, paused cluster', () => {
  const inp = healthy();
  inp.members.node1 = { replayPaused: false, oldest: { pid: 4242, user: 'app', state: 'idle in transaction', age: 600 } };
  inp.replication = [inp.replication![0]];
  inp.cluster.members[1].state = 'stopped';
  inp.cluster.pause = true;
  inp.etcd = 'unhealthy member(s): node2: no answer';
  assert.deepEqual(preflightProblems(inp, limits), [
    'cluster: paused (maintenance mode): resume it first (patronictl resume)',
    'etcd: unhealthy member(s): node2: no answer',
    'node1: a transaction has been open for 600 s (pid 4242, user app, idle in transaction), more than 60 s: a restart or switchover would cut it off (end it, or raise --max-transaction-age)',
    'node2: stopped, not running',
    'node3: does not stream from the leader node1',
  ]);
});

test('synchronous mode without a synchronous standby; backups and archiving (only when asked)', () => {
  const inp = healthy();
  inp.synchronousMode = true;
  inp.backups = {
    info: { stanza: 'main', code: 0, message: 'ok', backupRunning: false, backups: [] },
    archiver: { failed_count: 3, last_failed_time: '2026-12-01T05:00:00Z', last_archived_time: '2026-12-01T04:00:18Z', last_failed_wal: '00000001000000000000000A' },
  };
  assert.deepEqual(preflightProblems(inp, limits), [
    'cluster: synchronous_mode is on but no member is a synchronous standby right now: a switchover needs one (wait until Patroni has picked one)',
    'pgbackrest: no backup in the repository: take one first (pgha backup)',
    'node1: WAL archiving fails: last failure 00000001000000000000000A at 2026-12-01T05:00:00Z (3 failures)',
  ]);
  assert.deepEqual(preflightProblems(inp, { ...limits, backups: false }).length, 1);
  inp.cluster.members[2].role = 'sync_standby';
  inp.replication![1].sync_state = 'sync';
  assert.deepEqual(preflightProblems(inp, { ...limits, backups: false }), []);
});
