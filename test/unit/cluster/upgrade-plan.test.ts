// pgha upgrade's plan (src/cluster/upgrade-plan.ts): which packages change on a host, to which
// version, in which turn; and what it refuses (pins not offered, downgrades, held packages).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { consideredPackages, installArgs, planHostUpgrade, type HostFacts } from '../../../src/cluster/upgrade-plan.js';

const installed = (rows: [string, string, string][]) => new Map(rows.map(([name, version, source]) => [name, { version, source }]));

function dbHost(over: Partial<HostFacts> = {}): HostFacts {
  return {
    host: 'node1',
    database: true,
    components: [
      { component: 'etcd', packages: ['etcd-server', 'etcd-client'] },
      { component: 'patroni', packages: ['postgresql-15', 'patroni'] },
      { component: 'haproxy', packages: ['haproxy'] },
      { component: 'pgbackrest', packages: ['pgbackrest'] },
    ],
    installed: installed([
      ['etcd-server', '3.4.23-4+b4', 'etcd'],
      ['etcd-client', '3.4.23-4+b4', 'etcd'],
      ['postgresql-15', '15.18-0+deb12u1', 'postgresql-15'],
      ['postgresql-client-15', '15.20-0+deb12u1', 'postgresql-15'],
      ['libpq5', '15.20-0+deb12u1', 'postgresql-15'],
      ['patroni', '3.0.2-1', 'patroni'],
      ['haproxy', '2.6.12-1+deb12u3', 'haproxy'],
      ['pgbackrest', '2.45-1', 'pgbackrest'],
      ['libssl3', '3.0.15-1~deb12u1', 'openssl'],
    ]),
    offered: new Map([
      ['etcd-server', ['3.4.23-4+b4']],
      ['etcd-client', ['3.4.23-4+b4']],
      ['postgresql-15', ['15.20-0+deb12u1', '15.18-0+deb12u1']],
      ['postgresql-client-15', ['15.20-0+deb12u1', '15.18-0+deb12u1']],
      ['libpq5', ['15.20-0+deb12u1', '15.18-0+deb12u1']],
      ['patroni', ['3.0.2-1']],
      ['haproxy', ['2.6.12-1+deb12u4', '2.6.12-1+deb12u3']],
      ['pgbackrest', ['2.45-1']],
    ]),
    pins: {},
    held: new Set(),
    others: null,
    ...over,
  };
}

test('unpinned: the newest version offered; the server package brings its source group; each change in its turn', () => {
  const p = planHostUpgrade(dbHost());
  assert.deepEqual(p.problems, []);
  assert.deepEqual(p.turns, {
    postgresql: [{ name: 'postgresql-15', from: '15.18-0+deb12u1', to: '15.20-0+deb12u1', pinned: false }],
    haproxy: [{ name: 'haproxy', from: '2.6.12-1+deb12u3', to: '2.6.12-1+deb12u4', pinned: false }],
  });
  assert.deepEqual(installArgs(p.turns.postgresql!), ['install', '-y', '--only-upgrade', '--no-install-recommends', 'postgresql-15=15.20-0+deb12u1']);
});

test('the madison question covers the source groups and installed pinned packages', () => {
  const f = dbHost({ pins: { libssl3: '3.0.17-1~deb12u2', 'not-installed': '1.0-1' } });
  assert.deepEqual(consideredPackages(f), ['etcd-client', 'etcd-server', 'haproxy', 'libpq5', 'libssl3', 'patroni', 'pgbackrest', 'postgresql-15', 'postgresql-client-15']);
});

test('pinned: exactly the pin, also to an older offered version than the newest; a pin equal to what runs changes nothing', () => {
  const p = planHostUpgrade(dbHost({ pins: { 'postgresql-15': '15.18-0+deb12u1', haproxy: '2.6.12-1+deb12u3' } }));
  assert.deepEqual(p.turns, {});
  assert.deepEqual(p.problems, []);
  const q = planHostUpgrade(dbHost({ pins: { haproxy: '2.6.12-1+deb12u4' } }));
  assert.deepEqual(q.turns.haproxy, [{ name: 'haproxy', from: '2.6.12-1+deb12u3', to: '2.6.12-1+deb12u4', pinned: true }]);
});

test('refused: a pin the sources do not offer, a pin older than what is installed, a held package, a stack package not installed', () => {
  const f = dbHost({ pins: { 'postgresql-15': '15.99-0+deb12u1', libpq5: '15.18-0+deb12u1' }, held: new Set(['haproxy']) });
  f.installed.delete('pgbackrest');
  const p = planHostUpgrade(f);
  assert.deepEqual(p.problems, [
    'node1: pgbackrest is not installed: run pgha apply first',
    'node1: haproxy is held (apt-mark hold) at 2.6.12-1+deb12u3: apt-mark unhold haproxy first to upgrade it to 2.6.12-1+deb12u4',
    'node1: libpq5 15.20-0+deb12u1 is installed, newer than the pin 15.18-0+deb12u1: pgha never downgrades (pin 15.20-0+deb12u1 or newer)',
    "node1: postgresql-15 15.99-0+deb12u1 (pinned) is not offered by the host's apt sources (offered: 15.20-0+deb12u1, 15.18-0+deb12u1)",
  ]);
});

test('Patroni itself has its own turn (under pause); pgBackRest needs no restart; --all adds the rest to the PostgreSQL roll on a database host', () => {
  const f = dbHost({ others: [{ name: 'libssl3', from: '3.0.15-1~deb12u1', to: '3.0.17-1~deb12u2' }, { name: 'haproxy', from: '2.6.12-1+deb12u3', to: '2.6.12-1+deb12u4' }] });
  f.offered.set('patroni', ['3.0.4-1', '3.0.2-1']);
  f.offered.set('pgbackrest', ['2.46-1', '2.45-1']);
  const p = planHostUpgrade(f);
  assert.deepEqual(p.turns.patroni, [{ name: 'patroni', from: '3.0.2-1', to: '3.0.4-1', pinned: false }]);
  assert.deepEqual(p.turns.host, [{ name: 'pgbackrest', from: '2.45-1', to: '2.46-1', pinned: false }]);
  assert.deepEqual(p.turns.postgresql?.map((c) => c.name), ['postgresql-15', 'libssl3']);
  // The repository host: everything without a restart.
  const repo = planHostUpgrade({ ...f, host: 'node4', database: false, components: [{ component: 'pgbackrest', packages: ['pgbackrest'] }], others: f.others!.slice(0, 1) });
  assert.deepEqual(Object.keys(repo.turns), ['host']);
  assert.deepEqual(repo.turns.host?.map((c) => c.name), ['pgbackrest', 'libssl3']);
});
