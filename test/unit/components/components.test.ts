import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dynamicConfigPatch, pendingRestartNote } from '../../../src/components/patroni/config.js';
import { packagesFor } from '../../../src/components/index.js';
import { RELEASES } from '../../../src/components/base/release.js';
import { parseHaproxyCsv } from '../../../src/components/haproxy/state.js';
import { parseInfo } from '../../../src/components/pgbackrest/info.js';
import { loadInventory } from '../../../src/inventory/index.js';
import { mkdtemp, copyFile, chmod, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

test('dynamic config: nothing to patch when the live config matches (numbers vs strings alike)', () => {
  const live = { ttl: 30, loop_wait: 10, postgresql: { use_slots: true, parameters: { max_connections: '200', wal_level: 'replica' } } };
  const wanted = { ttl: 30, loop_wait: 10, postgresql: { use_slots: true, parameters: { max_connections: 200, wal_level: 'replica' } } };
  assert.deepEqual(dynamicConfigPatch(live, wanted), { patch: {}, changes: [] });
});

test('dynamic config: changed settings and parameters are patched, dropped parameters set to null', () => {
  const live = { ttl: 30, loop_wait: 10, postgresql: { use_pg_rewind: true, parameters: { max_connections: 200, work_mem: '4MB' } } };
  const wanted = { ttl: 15, loop_wait: 10, postgresql: { use_pg_rewind: true, parameters: { max_connections: 300 } } };
  const { patch, changes } = dynamicConfigPatch(live, wanted);
  assert.deepEqual(patch, { ttl: 15, postgresql: { parameters: { max_connections: 300, work_mem: null } } });
  assert.deepEqual(changes, ['ttl 30 -> 15', 'postgresql.parameters.max_connections 200 -> 300', 'postgresql.parameters.work_mem "4MB" -> null']);
});

test('pending restart note: one parameter "takes" effect; it names pgha restart, its --check and apply --restart-pending', () => {
  assert.equal(
    pendingRestartNote(['max_connections'], 'inventories/lab.yml'),
    'pending restart: max_connections takes effect only after PostgreSQL restarts. `pgha restart -i inventories/lab.yml` restarts the members ' +
      'one at a time without a write outage beyond one switchover (the replicas, a switchover to a restarted one, the old leader); ' +
      '`pgha restart -i inventories/lab.yml --check` shows the order, and `pgha apply --restart-pending` applies and restarts in one run',
  );
});

test('pending restart note: several parameters "take" effect; the inventory path is quoted for the shell', () => {
  const note = pendingRestartNote(['max_connections', 'shared_buffers', 'max_wal_senders'], 'my inventory.yml');
  assert.match(note, /^pending restart: max_connections, shared_buffers and max_wal_senders take effect only after PostgreSQL restarts\. /);
  assert.match(note, /`pgha restart -i 'my inventory\.yml'` restarts/);
});

test('HAProxy stats CSV: servers with their status, frontends and backends dropped', () => {
  const csv = [
    '# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight',
    'stats,FRONTEND,,,0,1,1000,3,0,0,0,0,0,,,,,OPEN,',
    'primary,FRONTEND,,,0,0,1000,0,0,0,0,0,0,,,,,OPEN,',
    'primary,node1,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP,1',
    'primary,node2,0,0,0,0,,0,0,0,,0,,0,0,0,0,DOWN,1',
    'primary,BACKEND,0,0,0,0,100,0,0,0,0,0,,0,0,0,0,UP,1',
    'replicas,node2,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP 1/2,1',
  ].join('\n');
  assert.deepEqual(parseHaproxyCsv(csv), [
    { backend: 'primary', server: 'node1', status: 'UP' },
    { backend: 'primary', server: 'node2', status: 'DOWN' },
    { backend: 'replicas', server: 'node2', status: 'UP 1/2' },
  ]);
  assert.deepEqual(parseHaproxyCsv('garbage'), []);
});

test('pgBackRest info: status codes and backups read from the JSON, not the exit code', () => {
  const json = JSON.stringify([
    {
      name: 'main',
      status: { code: 0, message: 'ok' },
      archive: [{ id: '15-1', max: '000000010000000000000005', min: '000000010000000000000001' }],
      backup: [{ label: '20261122-051500F', type: 'full', timestamp: { start: 100, stop: 130 }, info: { size: 30000000, delta: 30000000, repository: { size: 4000000, delta: 4000000 } } }],
    },
  ]);
  const info = parseInfo(json, 'main');
  assert.equal(info.code, 0);
  assert.equal(info.archiveMax, '000000010000000000000005');
  assert.deepEqual(info.backups, [
    {
      label: '20261122-051500F', type: 'full', prior: null, start: 100, stop: 130, databaseSize: 30000000, backupSize: 30000000,
      storedSize: 4000000, storedSetSize: 4000000, walStart: undefined, walStop: undefined, error: false,
    },
  ]);
  const missing = parseInfo(JSON.stringify([{ name: 'main', status: { code: 1, message: 'missing stanza path' } }]), 'main');
  assert.equal(missing.code, 1);
  assert.equal(parseInfo('[]', 'main').code, 1);
});

test('packages: each host gets what its roles need, and no more', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pgha-apply-'));
  const text = (await readFile('inventories/example.yml', 'utf8')).replace('secrets: example.secrets.yml', 'secrets: s.yml');
  await writeFile(join(dir, 'inv.yml'), text);
  await copyFile('test/fixtures/secrets/test-secrets.yaml', join(dir, 's.yml'));
  await chmod(join(dir, 's.yml'), 0o600);
  const inv = await loadInventory(join(dir, 'inv.yml'));
  // openssl: TLS (the default) makes each host's keys and signing requests there; socat: HAProxy's runtime API.
  const pg1 = ['curl', 'etcd-client', 'etcd-server', 'haproxy', 'openssl', 'patroni', 'pgbackrest', 'python3-etcd', 'socat'];
  assert.deepEqual(packagesFor(inv, inv.host('pg1'), RELEASES.bookworm).sort(), [...pg1, 'postgresql-15'].sort());
  assert.deepEqual(packagesFor(inv, inv.host('backup1'), RELEASES.bookworm).sort(), ['curl', 'openssh-client', 'openssl', 'pgbackrest']);
  // Debian 13: its PostgreSQL, and python3-etcd all the same (its patroni package does not pull it in).
  assert.deepEqual(packagesFor(inv, inv.host('pg1'), RELEASES.trixie).sort(), [...pg1, 'postgresql-17'].sort());
  assert.deepEqual(packagesFor(inv, inv.host('backup1'), RELEASES.trixie).sort(), ['curl', 'openssh-client', 'openssl', 'pgbackrest']);
  // A major the inventory names wins over the release's.
  inv.cluster.postgres_version = 16;
  assert.ok(packagesFor(inv, inv.host('pg1'), RELEASES.trixie).includes('postgresql-16'));
});
