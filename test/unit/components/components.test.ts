import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dynamicConfigPatch, pendingRestartNote } from '../../../src/components/patroni/config.js';
import { packagesFor } from '../../../src/components/index.js';
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

test('pending restart note: one parameter "takes" effect; replicas first, a switchover, then the old leader', () => {
  const note = pendingRestartNote(['max_connections'], {
    cluster: 'lab',
    leader: 'node1',
    replicas: [{ name: 'node2', nofailover: false }, { name: 'node3', nofailover: false }],
    inventoryFile: 'inventories/lab.yml',
  });
  assert.equal(
    note,
    'pending restart: max_connections takes effect only after PostgreSQL restarts. Restart the replicas first, one at a time, then switch over ' +
      'to a restarted replica and restart the old leader (a switchover pauses writes for about 2 s; restarting the leader in place fails them ' +
      'for longer); patronictl runs on any database host:\n' +
      '  1. sudo -u postgres patronictl -c /etc/patroni/config.yml restart lab node2 --pending --force\n' +
      '  2. sudo -u postgres patronictl -c /etc/patroni/config.yml restart lab node3 --pending --force\n' +
      '  3. pgha switchover -i inventories/lab.yml --candidate node2\n' +
      '  4. sudo -u postgres patronictl -c /etc/patroni/config.yml restart lab node1 --pending --force',
  );
});

test('pending restart note: several parameters "take" effect; the candidate is never a nofailover member', () => {
  const note = pendingRestartNote(['max_connections', 'shared_buffers', 'max_wal_senders'], {
    cluster: 'main',
    leader: 'pg2',
    replicas: [{ name: 'pg1', nofailover: true }, { name: 'pg3', nofailover: false }],
    inventoryFile: 'my inventory.yml',
  });
  const lines = note.split('\n');
  assert.match(lines[0], /^pending restart: max_connections, shared_buffers and max_wal_senders take effect only after PostgreSQL restarts\. /);
  assert.deepEqual(lines.slice(1), [
    '  1. sudo -u postgres patronictl -c /etc/patroni/config.yml restart main pg1 --pending --force',
    '  2. sudo -u postgres patronictl -c /etc/patroni/config.yml restart main pg3 --pending --force',
    "  3. pgha switchover -i 'my inventory.yml' --candidate pg3",
    '  4. sudo -u postgres patronictl -c /etc/patroni/config.yml restart main pg2 --pending --force',
  ]);
  // No member can take over: the leader last, and the note says writes fail meanwhile.
  const alone = pendingRestartNote(['max_connections', 'shared_buffers'], { cluster: 'main', leader: 'pg2', replicas: [{ name: 'pg1', nofailover: true }] });
  assert.match(alone, /^pending restart: max_connections and shared_buffers take effect .* then the leader \(no replica can take over: writes fail while it restarts\)/);
  assert.deepEqual(alone.split('\n').slice(1), [
    '  1. sudo -u postgres patronictl -c /etc/patroni/config.yml restart main pg1 --pending --force',
    '  2. sudo -u postgres patronictl -c /etc/patroni/config.yml restart main pg2 --pending --force',
  ]);
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
  assert.deepEqual(packagesFor(inv, inv.host('pg1')).sort(), ['curl', 'etcd-client', 'etcd-server', 'haproxy', 'openssl', 'patroni', 'pgbackrest', 'postgresql-15']);
  assert.deepEqual(packagesFor(inv, inv.host('backup1')).sort(), ['openssh-client', 'pgbackrest']);
});
