import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bestReplica, slotName } from '../../../../src/components/patroni/members.js';
import { fixtureInventory } from '../../inventory-fixture.js';

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
  assert.equal(bestReplica(inv, { members }, staying, new Set(['pg2', 'pg3'])).name, 'pg3');
  // pg3 not streaming: pg2, although it lags more.
  assert.equal(bestReplica(inv, { members }, staying, new Set(['pg2'])).name, 'pg2');
  // pg3 leaves too: it is not a candidate whatever its lag.
  assert.equal(bestReplica(inv, { members }, ['pg2', 'pg4'], new Set(['pg2', 'pg3'])).name, 'pg2');
  assert.throws(() => bestReplica(inv, { members }, ['pg4'], new Set(['pg2', 'pg3'])), /^InputError: pg1 leaves roles\.postgres, but no replica that stays can take over: pg4 is stopped, not running: it cannot take over\. Nothing was changed$/);
});
