// The order of a rolling procedure (src/cluster/roll.ts planRoll, describeRoll): replicas first
// (asynchronous ones before the synchronous standby), then a switchover, then the old leader; in
// place only when no replica can take over.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadInventory } from '../../../src/inventory/index.js';
import { describeRoll, planRoll, rollMembers } from '../../../src/cluster/roll.js';
import type { PatroniCluster } from '../../../src/components/patroni/cluster.js';

const inventory = () => loadInventory('test/fixtures/inventories/valid.yml', { secrets: false });
const member = (name: string, role: string, extra: object = {}) => ({ name, role, state: role === 'replica' || role === 'sync_standby' ? 'streaming' : 'running', lag: 0, ...extra });

test('pending everywhere: replicas in inventory order, then a switchover, then the old leader', async () => {
  const inv = await inventory();
  const c: PatroniCluster = { members: [member('pg3', 'replica'), member('pg2', 'master'), member('pg1', 'replica')] };
  const plan = planRoll(inv, c, new Set(['pg1', 'pg2', 'pg3']), false);
  assert.deepEqual(plan, { replicas: ['pg1', 'pg3'], leader: { name: 'pg2', switchover: true }, synchronous: false });
  assert.deepEqual(rollMembers(plan), ['pg1', 'pg3', 'pg2']);
  assert.deepEqual(describeRoll(plan, (m) => `restart ${m}`), [
    '  1. restart pg1 (replica); wait until it streams from the leader and has caught up',
    '  2. restart pg3 (replica); wait until it streams from the leader and has caught up',
    '  3. switch over from pg2 to a caught-up replica that is done (writes pause for about 2 s)',
    '  4. restart pg2 (the old leader, now a replica), unless its demotion already did; wait until it streams and has caught up',
  ]);
});

test('synchronous mode: the synchronous standby last among the replicas, the switchover goes to the synchronous standby', async () => {
  const inv = await inventory();
  const c: PatroniCluster = { members: [member('pg1', 'leader'), member('pg2', 'sync_standby'), member('pg3', 'replica')] };
  const plan = planRoll(inv, c, new Set(['pg1', 'pg2', 'pg3']), true);
  assert.deepEqual(plan.replicas, ['pg3', 'pg2']);
  assert.match(describeRoll(plan, (m) => `restart ${m}`)[2], /switch over from pg1 to the synchronous standby/);
});

test('only what is to do: a leader with nothing to do is not switched over; a replica with nothing to do is left alone', async () => {
  const inv = await inventory();
  const c: PatroniCluster = { members: [member('pg1', 'leader'), member('pg2', 'replica'), member('pg3', 'replica')] };
  assert.deepEqual(planRoll(inv, c, new Set(['pg3']), false), { replicas: ['pg3'], synchronous: false });
  assert.deepEqual(planRoll(inv, c, new Set(['pg1']), false), { replicas: [], leader: { name: 'pg1', switchover: true }, synchronous: false });
});

test('no replica can take over (nofailover): the leader in place, and the plan says writes fail meanwhile', async () => {
  const inv = await inventory();
  const c: PatroniCluster = { members: [member('pg1', 'leader'), member('pg2', 'replica', { tags: { nofailover: true } }), member('pg3', 'replica', { tags: { nofailover: true } })] };
  const plan = planRoll(inv, c, new Set(['pg1', 'pg2', 'pg3']), false);
  assert.deepEqual(plan.leader, { name: 'pg1', switchover: false });
  assert.match(describeRoll(plan, (m) => `restart ${m}`).at(-1)!, /restart pg1 \(the leader\) in place: no replica can take over \(nofailover\), so writes fail while it restarts/);
});

test('a lowered setting a replica may not run below its primary: the leader first, in place, then the replicas', async () => {
  const inv = await inventory();
  const c: PatroniCluster = { members: [member('pg1', 'leader'), member('pg2', 'replica'), member('pg3', 'replica')] };
  const plan = planRoll(inv, c, new Set(['pg1', 'pg2', 'pg3']), false, 'max_connections goes down (300 -> 200)');
  assert.deepEqual(plan.leader, { name: 'pg1', switchover: false, first: 'max_connections goes down (300 -> 200)' });
  assert.deepEqual(rollMembers(plan), ['pg1', 'pg2', 'pg3']);
  assert.deepEqual(describeRoll(plan, (m) => `restart ${m}`), [
    '  1. restart pg1 (the leader) in place first: max_connections goes down (300 -> 200); writes fail while it restarts',
    '  2. restart pg2 (replica); wait until it streams from the leader and has caught up',
    '  3. restart pg3 (replica); wait until it streams from the leader and has caught up',
  ]);
});
