import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bestReplica, slotName } from '../../../../src/components/patroni/members.js';
import { fixtureInventory } from '../../inventory-fixture.js';

// Who the leader sees streaming; a null lag: not measured, Patroni's figure counts.
const streamingOf = (...names: string[]) => new Map<string, number | null>(names.map((n) => [n, null]));

test("Patroni's slot name of a member: lowercase, - and . as _", () => {
  assert.equal(slotName('node5'), 'node5');
  assert.equal(slotName('db-2.example'), 'db_2_example');
  assert.equal(slotName('x'.repeat(70)).length, 63);
});

test('the replica that takes over from a leader that leaves: one that stays, streams, may be promoted, with the least lag', async () => {
  const inv = await fixtureInventory({ etcd: ['pg1', 'pg2', 'pg3'], postgres: ['pg2', 'pg3', 'pg4'], haproxy: ['pg1'], extra: ['pg1'] });
  const members = [
    { name: 'pg1', role: 'master', state: 'running', lag: 0 },
    { name: 'pg2', role: 'replica', state: 'running', lag: 900 },
    { name: 'pg3', role: 'replica', state: 'running', lag: 10 },
    { name: 'pg4', role: 'replica', state: 'stopped', lag: 0 },
  ];
  const staying = ['pg2', 'pg3', 'pg4'];
  assert.equal(bestReplica(inv, { members }, staying, streamingOf('pg2', 'pg3')).name, 'pg3');
  // pg3 not streaming: pg2, although it lags more.
  assert.equal(bestReplica(inv, { members }, staying, streamingOf('pg2')).name, 'pg2');
  // pg3 leaves too: it is not a candidate whatever its lag.
  assert.equal(bestReplica(inv, { members }, ['pg2', 'pg4'], streamingOf('pg2', 'pg3')).name, 'pg2');
  assert.throws(() => bestReplica(inv, { members }, ['pg4'], streamingOf('pg2', 'pg3')), /^InputError: pg1 leaves roles\.postgres, but no replica that stays can take over: pg4 is stopped, not running: it cannot take over\. Nothing was changed$/);
});

test("the lag the leader measures now outranks Patroni's figure, which is up to loop_wait old", async () => {
  const inv = await fixtureInventory({ etcd: ['pg1', 'pg2', 'pg3'], postgres: ['pg1', 'pg2', 'pg3'], haproxy: ['pg1'] });
  // Right after a WAL segment switch on a quiet leader Patroni shows every replica a segment behind.
  const members = [
    { name: 'pg1', role: 'leader', state: 'running', lag: 0 },
    { name: 'pg2', role: 'replica', state: 'streaming', lag: 16735552 },
    { name: 'pg3', role: 'replica', state: 'streaming', lag: 16735552 },
  ];
  const live = new Map<string, number | null>([['pg2', 0], ['pg3', 120]]);
  assert.equal(bestReplica(inv, { members }, ['pg2', 'pg3'], live).name, 'pg2');
  assert.throws(() => bestReplica(inv, { members }, ['pg2', 'pg3'], streamingOf('pg2', 'pg3')), /pg2 lags 16735552 bytes, more than maximum_lag_on_failover \(1048576\): it cannot take over/);
  // And the other way: Patroni says 0, the leader sees 2 MB not flushed yet.
  const fresh = members.map((m) => ({ ...m, lag: 0 }));
  assert.throws(() => bestReplica(inv, { members: fresh }, ['pg2'], new Map([['pg2', 2_000_000]])), /pg2 lags 2000000 bytes, more than maximum_lag_on_failover/);
});
