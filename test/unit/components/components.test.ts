import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dynamicConfigPatch } from '../../../src/components/patroni/config.js';
import { packagesFor } from '../../../src/components/index.js';
import { parseHaproxyCsv } from '../../../src/components/haproxy/state.js';
import { parseRepoInfo as parseInfo } from '../../../src/components/pgbackrest/info.js';
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
      backup: [{ label: '20261122-051500F', type: 'full', timestamp: { start: 100, stop: 130 }, info: { size: 30000000, repository: { size: 4000000 } } }],
    },
  ]);
  const info = parseInfo(json, 'main');
  assert.equal(info.code, 0);
  assert.equal(info.archiveMax, '000000010000000000000005');
  assert.deepEqual(
    info.backups.map(({ label, type, start, stop, size, repoSize }) => ({ label, type, start, stop, size, repoSize })),
    [{ label: '20261122-051500F', type: 'full', start: 100, stop: 130, size: 30000000, repoSize: 4000000 }],
  );
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
  assert.deepEqual(packagesFor(inv, inv.host('pg1')).sort(), ['curl', 'etcd-client', 'etcd-server', 'haproxy', 'patroni', 'pgbackrest', 'postgresql-15']);
  assert.deepEqual(packagesFor(inv, inv.host('backup1')).sort(), ['openssh-client', 'pgbackrest']);
});
