// The fault checker's own logic, without a cluster: it must REPORT a planted loss, a planted
// duplicate and a planted second primary (a checker that cannot fail proves nothing).
// The same plants against the lab's real cluster are in test/cluster/faults.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { compareRows, isReadOnlyError, longestGapS, lostTiming, PrimaryProbe, problems, Writer, type Ack, type CheckReport, type Member } from '../faults/checker.js';

const acks = (seqs: number[], step = 100): Ack[] => seqs.map((seq, i) => ({ seq, at: 1000 + i * step }));

test('every acknowledged write present once: nothing lost, nothing duplicated', () => {
  const found = new Map([1, 2, 3, 4].map((s) => [s, 1] as [number, number]));
  found.set(5, 1); // attempted, outcome unknown to the client: present but not acknowledged is fine
  assert.deepEqual(compareRows(acks([1, 2, 3, 4]), found), { lost: [], duplicated: [] });
});

test('a planted loss and a planted duplicate are reported', () => {
  const found = new Map<number, number>([
    [1, 1],
    [2, 2],
    [4, 1],
  ]);
  assert.deepEqual(compareRows(acks([1, 2, 3, 4]), found), { lost: [3], duplicated: [2] });
});

test('write unavailability is the longest gap, including from the start and to the stop', () => {
  const a: Ack[] = [
    { seq: 1, at: 1100 },
    { seq: 2, at: 1200 },
    { seq: 3, at: 9200 },
    { seq: 4, at: 9300 },
  ];
  assert.equal(longestGapS(a, 1000, 9400), 8);
  assert.equal(longestGapS(a, -10_000, 9400), 11.1);
  assert.equal(longestGapS(a, 1000, 30_000), 20.7);
  assert.equal(longestGapS([], 1000, 4000), 3);
});

test('a lost write is placed against the fault: how long before or after it was acknowledged, and whether it was the last one before', () => {
  // Acknowledged at 1.000, 6.000, 11.000 and 16.000 s; the fault at 11.020 s.
  assert.equal(
    lostTiming(acks([20, 21, 22, 30], 5000), [22, 21, 30], 11_020),
    'lost writes: 22 acknowledged 0.020 s before the fault (the last acknowledgement before it), 21 acknowledged 5.020 s before the fault, 30 acknowledged 4.980 s after the fault',
  );
});

const members: Member[] = ['node1', 'node2', 'node3'].map((name, i) => ({ name, host: '127.0.0.1', port: 1 + i }));

test('the probe reports no double primary when one member accepts writes', async () => {
  const p = new PrimaryProbe(members, async (m) => m.name === 'node1', { intervalMs: 10, maxMs: 200 });
  p.start();
  await p.stop();
  assert.ok(p.rounds.length >= 1);
  assert.deepEqual(p.doublePrimaryMoments(), []);
});

test('a planted second writable member is reported as double-primary moments', async () => {
  let round = 0;
  const p = new PrimaryProbe(
    members,
    async (m) => {
      if (m.name === 'node1') round += 1;
      return m.name === 'node1' || (m.name === 'node3' && round >= 3 && round <= 4);
    },
    { intervalMs: 5, maxMs: 150 },
  );
  p.start();
  await new Promise((r) => setTimeout(r, 100));
  await p.stop();
  const moments = p.doublePrimaryMoments();
  assert.equal(moments.length, 2);
  assert.deepEqual(moments[0].writable, ['node1', 'node3']);
});

test('the probe loop stops by itself at its time limit', async () => {
  const p = new PrimaryProbe(members, async () => false, { intervalMs: 10, maxMs: 100 });
  const t = Date.now();
  p.start();
  await new Promise((r) => setTimeout(r, 300));
  await p.stop();
  assert.ok(Date.now() - t < 1000);
  assert.ok(p.rounds.length > 0 && p.rounds.length < 20, String(p.rounds.length));
});

test('the writer retries an unreachable endpoint, acknowledges nothing, and stops by itself', async () => {
  // A port nobody listens on: bind, note the port, close.
  const port = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  const w = new Writer([{ host: '127.0.0.1', port }], { user: 'x', password: 'y' }, 'unit', { retryPauseMs: 20, maxMs: 500 });
  w.start();
  await new Promise((r) => setTimeout(r, 800));
  await w.stop();
  assert.equal(w.acks.length, 0);
  assert.equal(w.attempted, 0);
  assert.ok([...w.errors.values()].reduce((a, b) => a + b, 0) >= 3);
});

test('problems() names lost writes, duplicates and double primaries; a clean report has none', () => {
  const clean: CheckReport = {
    run: 'r',
    attempted: 10,
    acknowledged: 9,
    lost: [],
    duplicated: [],
    unavailabilityS: 1,
    doublePrimaryMoments: [],
    probeRounds: 5,
    finalLeader: 'node1',
    errors: [],
    readOnlyErrors: 0,
  };
  assert.deepEqual(problems(clean), []);
  const bad = { ...clean, lost: [3, 4], duplicated: [7], doublePrimaryMoments: [{ at: 0, writable: ['node1', 'node2'] }] };
  const p = problems(bad).join('\n');
  assert.match(p, /2 acknowledged write\(s\) lost \(e\.g\. 3, 4\)/);
  assert.match(p, /1 write\(s\) found twice/);
  assert.match(p, /1 double-primary moment\(s\).*node1 \+ node2/);
});

test('read-only refusals are told apart from other client errors', () => {
  // What pg raises: a DatabaseError with the SQLSTATE in `code`.
  const pgErr = (message: string, code: string) => Object.assign(new Error(message), { code });
  assert.ok(isReadOnlyError(pgErr('cannot execute INSERT in a read-only transaction', '25006')));
  assert.ok(isReadOnlyError(pgErr('session is read-only', '25006')));
  assert.ok(isReadOnlyError(new Error('cannot execute INSERT in a read-only transaction')));
  assert.ok(!isReadOnlyError(pgErr('terminating connection due to administrator command', '57P01')));
  assert.ok(!isReadOnlyError(pgErr('the database system is shutting down', '57P03')));
  assert.ok(!isReadOnlyError(new Error('Connection terminated unexpectedly')));
  assert.ok(!isReadOnlyError(new Error('connect ECONNREFUSED 10.0.0.1:5000')));
});
