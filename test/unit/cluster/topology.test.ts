import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseHostFacts, planTopology, TopologyPlan } from '../../../src/cluster/topology.js';
import type { ApplyContext, HostRoleFacts, TopologyFacts } from '../../../src/components/types.js';
import type { PatroniMember } from '../../../src/components/patroni/cluster.js';
import type { LiveMember } from '../../../src/components/etcd/membership.js';
import { Reporter } from '../../../src/engine/index.js';
import { InputError } from '../../../src/errors.js';
import { RELEASES } from '../../../src/components/base/release.js';
import { PassThrough } from 'node:stream';
import { fixtureAddress, fixtureInventory } from '../inventory-fixture.js';

// A host that runs every role of a live member (Patroni, etcd, pgha's HAProxy), or nothing.
const running = (o: Partial<HostRoleFacts> = {}): HostRoleFacts => ({
  patroni: { active: true, enabled: true, config: true },
  etcd: { active: true, enabled: true, data: true },
  haproxy: { active: true, enabled: true, pgha: true },
  pgData: true,
  ...o,
});
const bare = (): HostRoleFacts => ({
  patroni: { active: false, enabled: false, config: false },
  etcd: { active: false, enabled: false, data: false },
  haproxy: { active: true, enabled: true, pgha: false }, // Debian's own haproxy, started on install
  pgData: false,
});
const pm = (name: string, role: string, lag = 0, o: Partial<PatroniMember> = {}): PatroniMember => ({ name, role, state: 'running', lag, ...o });
// A member of a cluster with TLS (the default), or of one still in clear text.
const em = (name: string, o: Partial<LiveMember> = {}, scheme = 'https'): LiveMember => {
  const a = fixtureAddress(name);
  return { id: name, name, peerUrls: [`${scheme}://${a}:2380`], clientUrls: [`${scheme}://${a}:2379`], learner: false, healthy: true, leader: name === 'pg1', ...o };
};

/** The facts of a running 3-member cluster (pg1 leads), plus `more` hosts. */
function facts(more: Record<string, HostRoleFacts> = {}, o: Partial<TopologyFacts> = {}): TopologyFacts {
  return {
    release: RELEASES.bookworm,
    etcd: { members: [em('pg1'), em('pg2'), em('pg3')], version: '3.4.23' },
    patroni: { cluster: { members: [pm('pg1', 'master'), pm('pg2', 'replica', 100), pm('pg3', 'replica', 50)] }, streaming: new Map([['pg2', null], ['pg3', null]]) },
    hosts: new Map([
      ['pg1', running()],
      ['pg2', running()],
      ['pg3', running()],
      ['bk', running({ patroni: { active: false, enabled: false, config: false }, haproxy: { active: false, enabled: false, pgha: false }, pgData: false })],
      ...Object.entries(more),
    ]),
    purge: false,
    ...o,
  };
}
const three = ['pg1', 'pg2', 'pg3'];

test('host facts: services, data directories and whether HAProxy runs pgha config, from one script', () => {
  // systemctl show's blocks in the order asked (patroni, etcd, haproxy), then the flags.
  const f = parseHostFacts(
    'ActiveState=active\nUnitFileState=enabled\n\nActiveState=inactive\nUnitFileState=disabled\n\nActiveState=reloading\nUnitFileState=enabled\n@@flags\npgdata\npatroniconfig\netcdctl\n',
  );
  assert.deepEqual(f, {
    patroni: { active: true, enabled: true, config: true },
    etcd: { active: false, enabled: false, data: false },
    haproxy: { active: true, enabled: true, pgha: false },
    pgData: true,
    etcdctl: true,
  });
});

test('host facts: a host where systemctl answers nothing (no systemd) runs none of the services; its flags still count', () => {
  const f = parseHostFacts('@@flags\npgdata\n');
  assert.deepEqual([f.patroni.active, f.etcd.active, f.haproxy.active, f.patroni.enabled, f.pgData, f.etcdctl], [false, false, false, false, true, false]);
});

test('nothing changes: no step (and no plan printed)', async () => {
  const inv = await fixtureInventory({ etcd: three, postgres: three, haproxy: three });
  const steps = planTopology(facts(), inv);
  assert.deepEqual(steps, []);
  assert.equal(new TopologyPlan(facts(), steps, new Reporter()).describe(false), '');
});

test('a cluster still in clear text under a TLS inventory: the same members are no change; a membership change with it is refused', async () => {
  const plain = facts({}, { etcd: { members: three.map((n) => em(n, {}, 'http')), version: '3.4.23' } });
  const inv = await fixtureInventory({ etcd: three, postgres: three, haproxy: three });
  // The move to TLS (the tls component) changes the URLs, not who is a member.
  assert.deepEqual(planTopology(plain, inv), []);
  const grown = await fixtureInventory({ etcd: [...three, 'pg4', 'pg5'], postgres: three, haproxy: three, extra: ['pg4', 'pg5'] });
  const f = facts({ pg4: bare(), pg5: bare() }, { etcd: plain.etcd });
  assert.throws(
    () => planTopology(f, grown),
    (e: unknown) =>
      e instanceof InputError &&
      /^etcd still speaks clear text \(http:\/\/[^)]+:2380\) and the inventory changes its members \(etcd: add pg4 as a learner/.test(e.message) &&
      /apply the inventory with the hosts etcd has now \(pg1, pg2, pg3\) first, which moves the running cluster to TLS/.test(e.lines.join('\n')),
  );
});

test('a new cluster (nothing answers): no step, the usual rollout bootstraps it', async () => {
  const inv = await fixtureInventory({ etcd: three, postgres: three, haproxy: three });
  assert.deepEqual(planTopology({ release: RELEASES.bookworm, etcd: null, patroni: null, hosts: new Map(three.map((h) => [h, bare()])), purge: false }, inv), []);
});

test('a host added to every role: etcd joins first, then HAProxy, then PostgreSQL, in the order they run', async () => {
  const inv = await fixtureInventory({ etcd: [...three, 'pg4', 'pg5'], postgres: [...three, 'pg4'], haproxy: [...three, 'pg4'], extra: ['pg5'] });
  const f = facts({ pg4: bare(), pg5: bare() });
  const steps = planTopology(f, inv);
  assert.deepEqual(
    steps.map((s) => [s.phase, s.text]),
    [
      ['etcd.prepare', 'etcd: add pg4 as a learner, start it with ETCD_INITIAL_CLUSTER_STATE=existing, promote it to a voting member'],
      ['etcd.prepare', 'etcd: add pg5 as a learner, start it with ETCD_INITIAL_CLUSTER_STATE=existing, promote it to a voting member'],
      ['haproxy.prepare', 'haproxy: pg4 starts routing clients: port 5000 to the leader, port 5001 to the replicas'],
      ['patroni.start', 'postgres: pg4 joins as a replica, cloned from the pgBackRest repository (else pg_basebackup from the leader), and streams from the leader'],
    ],
  );
  const plan = new TopologyPlan(f, steps, new Reporter());
  assert.equal(
    plan.describe(true).split('\n')[0],
    'topology: 4 changes to the running cluster, in this order (check mode: none is made):',
  );
  assert.match(plan.describe(false), /^ {2}4\. postgres: pg4 joins as a replica/m);
});

test('a replica removed from every role: HAProxy is routed away, Patroni stops, etcd leaves last; --purge named', async () => {
  const inv = await fixtureInventory({ etcd: ['pg1', 'pg2', 'pg4'], postgres: ['pg1', 'pg2'], haproxy: ['pg1', 'pg2'], extra: ['pg3', 'pg4'] });
  const etcdOnly = running({ patroni: { active: false, enabled: false, config: false }, haproxy: { active: false, enabled: false, pgha: false }, pgData: false });
  const f = facts({ pg4: etcdOnly }, { purge: true });
  f.etcd!.members.push(em('pg4'));
  assert.deepEqual(
    planTopology(f, inv).map((s) => [s.phase, s.text]),
    [
      ['etcd.start', 'etcd: remove member pg3, then stop etcd on pg3 and remove its data'],
      ['patroni.leave', 'postgres: pg3 leaves: Patroni stopped and disabled, its config removed, its member key gone from the DCS and its replication slot dropped; its data directory /var/lib/postgresql/15/main is removed (--purge)'],
      ['haproxy.start', 'haproxy: pg3 stops routing (HAProxy stopped and disabled): clients must no longer use its address'],
    ],
  );
});

test('the leader removed: a switchover to the replica that stays with the least lag comes first', async () => {
  const inv = await fixtureInventory({ etcd: three, postgres: ['pg2', 'pg3'], haproxy: three });
  const steps = planTopology(facts(), inv);
  assert.deepEqual(
    steps.map((s) => [s.phase, s.text]),
    [
      ['before', 'postgres: switch over from pg1 to pg3 first (pg1 leaves roles.postgres; pg3 is the replica that stays with the least lag)'],
      ['patroni.leave', 'postgres: pg1 leaves: Patroni stopped and disabled, its config removed, its member key gone from the DCS and its replication slot dropped; its data stays in /var/lib/postgresql/15/main (--purge removes it)'],
    ],
  );
});

test('the leader removed with no replica able to take over: refused before anything changes, saying why', async () => {
  const inv = await fixtureInventory({ etcd: three, postgres: ['pg2', 'pg3'], haproxy: three, tags: { pg2: { nofailover: true } } });
  const f = facts();
  f.patroni!.cluster.members[1].tags = { nofailover: true };
  f.patroni!.streaming = new Map([['pg2', null]]);
  assert.throws(
    () => planTopology(f, inv),
    (err: unknown) =>
      err instanceof InputError &&
      err.message === 'pg1 leaves roles.postgres, but no replica that stays can take over: pg2 is tagged nofailover: Patroni never promotes it; pg3 does not stream from the leader: it cannot take over. Nothing was changed',
  );
  // A paused cluster: the usual switchover pre-check, before anything changes.
  const paused = facts();
  paused.patroni!.cluster.pause = true;
  assert.throws(() => planTopology(paused, inv), /the cluster is paused/);
});

test('a Patroni member the inventory does not know is refused: pgha could not stop it', async () => {
  const inv = await fixtureInventory({ etcd: three, postgres: three, haproxy: three });
  const f = facts();
  f.patroni!.cluster.members.push(pm('ghost', 'replica'));
  assert.throws(() => planTopology(f, inv), /^InputError: Patroni member ghost \(running\) is not in the inventory: pgha cannot stop it\. Keep such a host under hosts:/);
});

test('replace: refused for the running leader; for a rebuilt replica its etcd member is re-created and it joins again', async () => {
  const inv = await fixtureInventory({ etcd: three, postgres: three, haproxy: three });
  assert.throws(() => planTopology(facts({}, { replace: 'pg1' }), inv), /pg1 is the running leader of cluster t: its machine was not rebuilt/);
  const f = facts({ pg3: bare() }, { replace: 'pg3' });
  f.etcd!.members[2] = em('pg3', { healthy: false, error: 'no answer' });
  f.patroni!.cluster.members.pop();
  assert.deepEqual(
    planTopology(f, inv).map((s) => s.text),
    [
      'etcd: remove the old member pg3 (its machine was rebuilt; it does not answer)',
      'etcd: add pg3 as a learner, start it with ETCD_INITIAL_CLUSTER_STATE=existing, promote it to a voting member',
      'haproxy: pg3 starts routing clients: port 5000 to the leader, port 5001 to the replicas',
      'postgres: pg3 joins as a replica, cloned from the pgBackRest repository (else pg_basebackup from the leader), and streams from the leader',
    ],
  );
});

test('replace of the repository host: created again with a full backup; without a copy of the list, said plainly', async () => {
  const inv = await fixtureInventory({ etcd: three, postgres: three, haproxy: three });
  const steps = planTopology(facts({}, { replace: 'bk', repository: { exists: false, recorded: null } }), inv);
  assert.deepEqual(
    steps.map((s) => [s.phase, s.text]),
    [['pgbackrest.start', "pgbackrest: the repository on bk is created again (stanza main, a new full backup); lost with bk's old disk: every backup and all archived WAL it held (pgha has no copy of its backup list in etcd to name them)"]],
  );
  // Run again once it has its stanza: nothing left to do.
  assert.deepEqual(planTopology(facts({}, { replace: 'bk', repository: { exists: true, recorded: null } }), inv), []);
});

test('the runner: each step announced and timed in its phase; check mode runs none', async () => {
  const out = new PassThrough();
  let text = '';
  out.on('data', (d) => (text += d));
  const ran: string[] = [];
  const steps = [
    { phase: 'etcd.prepare' as const, text: 'one', run: async () => void ran.push('one') },
    { phase: 'patroni.start' as const, text: 'two', run: async () => void ran.push('two') },
  ];
  const plan = new TopologyPlan(facts(), steps, new Reporter({ out, tty: false }));
  const ctx = (check: boolean) => ({ rollout: { check } }) as unknown as ApplyContext;
  await plan.run('patroni.start', ctx(true));
  assert.deepEqual(ran, []);
  await plan.run('patroni.start', ctx(false));
  assert.deepEqual(ran, ['two']);
  assert.deepEqual(plan.notRun().map((s) => s.text), ['one']);
  assert.match(text, /^topology 2\/2: two\ntopology 2\/2 done in \d+\.\ds\n$/);
});
