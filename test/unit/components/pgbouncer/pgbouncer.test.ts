// PgBouncer without a cluster: where it runs and what it points at (the local HAProxy primary
// port), transaction pooling with auth_query as the dedicated role, its password only in a
// postgres-only file, the role's pg_hba rules, and the secrets file's required password.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { renderHost } from '../../../../src/components/index.js';
import { secretValues } from '../../../../src/inventory/index.js';
import { loadWith, TEST_SECRETS } from '../inventory-with.js';

const SECRETS = readFileSync('test/fixtures/secrets/test-secrets.yaml', 'utf8');

const load = (extra: string, secrets = `${TEST_SECRETS}pgbouncer_password: bouncer-pw-1\n`) => loadWith(extra, secrets);

test('PgBouncer on each HAProxy host: transaction pooling into the local HAProxy primary port, auth_query as pgha_pgbouncer', async () => {
  const { inv, lines } = await load('pgbouncer: {}\n');
  assert.deepEqual(lines, []);
  const files = renderHost(inv!, 'pg1', { dcs: 'etcd' });
  const ini = files.find((f) => f.path === '/etc/pgbouncer/pgbouncer.ini')!.content;
  for (const line of [
    '* = host=127.0.0.1 port=5000',
    'listen_addr = 10.1.0.1',
    'listen_port = 6432',
    'pool_mode = transaction',
    'auth_type = scram-sha-256',
    'auth_user = pgha_pgbouncer',
    'auth_query = SELECT usename, passwd FROM pgha_pgbouncer.get_auth($1)',
    'server_login_retry = 1',
    // TLS (the default): PostgreSQL refuses clear text; the member behind HAProxy is verified.
    'server_tls_sslmode = verify-full',
    'server_tls_ca_file = /etc/pgha/tls/ca.crt',
  ]) {
    assert.ok(ini.split('\n').includes(line), `missing ${line}`);
  }
  const userlist = files.find((f) => f.path === '/etc/pgbouncer/userlist.txt')!;
  assert.deepEqual([userlist.content, userlist.owner, userlist.mode, userlist.secret], ['"pgha_pgbouncer" "bouncer-pw-1"\n', 'postgres', 0o600, true]);
  assert.ok(secretValues(inv!.secrets).includes('bouncer-pw-1'), 'the masker knows the password');
  const hba = parse(files.find((f) => f.path === '/etc/patroni/config.yml')!.content).postgresql.pg_hba as string[];
  assert.deepEqual(hba.filter((l) => l.includes('pgha_pgbouncer')), ['host all pgha_pgbouncer 10.1.0.1/32 scram-sha-256', 'host all pgha_pgbouncer 10.1.0.2/32 scram-sha-256', 'host all pgha_pgbouncer 10.1.0.3/32 scram-sha-256']);
  // Not on the repository host; nothing without pgbouncer:.
  assert.ok(!renderHost(inv!, 'bk', { dcs: 'etcd' }).some((f) => f.component === 'pgbouncer'));
  assert.ok(!renderHost((await load('')).inv!, 'pg1', { dcs: 'etcd' }).some((f) => f.component === 'pgbouncer'));
});

test('PgBouncer without its password in the secrets file, or on a taken port: located', async () => {
  const { lines } = await load('pgbouncer: {port: 5000}\n', SECRETS);
  assert.equal(lines.length, 2, lines.join('\n'));
  assert.match(lines[0], /^inv\.yml:17:17: haproxy\.primary_port: port 5000 is also|^inv\.yml:20:\d+: pgbouncer\.port: port 5000 is also haproxy\.primary_port on pg1/);
  assert.match(lines[1], /^inv\.yml:20:12: pgbouncer: PgBouncer needs the password of its auth_query role, expected pgbouncer_password: PASSWORD in the secrets file .*s\.yml$/);
});
