// Users and databases, the pure half: SCRAM verifiers against one PostgreSQL made, the plans for
// a role and a database (what changes, the SQL, never a password), the users' pg_hba rules, and
// the inventory's users:/databases: checks with their located errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { attrChanges, databasePlan, rolePlan, scramMatches, scramVerifier, userHbaRules, wantedAttrs, type AppUser, type RoleState } from '../../../../src/components/databases/sql.js';
import { type Inventory } from '../../../../src/inventory/index.js';
import { loadWith, TEST_SECRETS } from '../inventory-with.js';

// Made by PostgreSQL 15 (Debian 12): CREATE ROLE t PASSWORD 'correct horse'; select rolpassword.
const PG_VERIFIER = 'SCRAM-SHA-256$4096:j2JliyMiBxsgk+0JOQdCcw==$AHrf45oHU5ifYRGc0s+qtPTF6LStCCVUqBWXZvJJelE=:H/KmSzrYR3DKWQ5TWD0Cewdtg3PmQT8KwH2AbMTExsI=';

const user = (over: Partial<AppUser> = {}): AppUser => ({ name: 'app', state: 'present', options: ['LOGIN'], connection_limit: -1, pg_hba: { databases: ['all'], from: ['haproxy'] }, ...over });
const role = (over: Partial<RoleState> = {}): RoleState => ({ superuser: false, createdb: false, createrole: false, inherit: true, login: true, replication: false, bypassrls: false, connection_limit: -1, verifier: null, ...over });

test("a verifier PostgreSQL made matches its password, and no other", () => {
  assert.equal(scramMatches(PG_VERIFIER, 'correct horse'), true);
  assert.equal(scramMatches(PG_VERIFIER, 'correct horsE'), false);
  assert.equal(scramMatches('md5a3556571e93b0d20722ba62be61e8c2d', 'correct horse'), false);
  assert.equal(scramMatches(null, 'correct horse'), false);
});

test('pgha computes the verifier PostgreSQL computes (same salt, same iterations)', () => {
  const salt = Buffer.from('j2JliyMiBxsgk+0JOQdCcw==', 'base64');
  assert.equal(scramVerifier('correct horse', salt, 4096), PG_VERIFIER);
  const fresh = scramVerifier('correct horse');
  assert.notEqual(fresh, PG_VERIFIER, 'a new salt every time');
  assert.equal(scramMatches(fresh, 'correct horse'), true);
});

test('options: CREATE ROLE defaults, then the listed ones', () => {
  const { verifier: _, ...attrs } = role({ login: false, createdb: true, inherit: false });
  assert.deepEqual(wantedAttrs(user({ options: ['CREATEDB', 'NOINHERIT'] })), attrs);
  assert.deepEqual(attrChanges(role(), wantedAttrs(user({ options: ['LOGIN', 'CREATEDB'], connection_limit: 5 }))), ['NOCREATEDB -> CREATEDB', 'CONNECTION LIMIT -1 -> 5']);
});

test('a missing user is created with its password as a verifier, never the password itself', () => {
  const p = rolePlan(user(), null, 'sekret-password-1');
  assert.deepEqual(p.changes, ['create (NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT LOGIN NOREPLICATION NOBYPASSRLS CONNECTION LIMIT -1, password set)']);
  assert.match(p.sql, /^CREATE ROLE "app" WITH NOSUPERUSER .* LOGIN .* PASSWORD 'SCRAM-SHA-256\$4096:/);
  assert.ok(!p.sql.includes('sekret-password-1'));
  assert.ok(!p.changes.join().includes('sekret-password-1'));
});

test('an existing user: nothing when all agrees, the password named (not shown) when it differs', () => {
  const verifier = scramVerifier('sekret-password-1');
  assert.deepEqual(rolePlan(user(), role({ verifier }), 'sekret-password-1'), { changes: [], sql: '' });
  const p = rolePlan(user(), role({ verifier }), 'sekret-password-2');
  assert.deepEqual(p.changes, ['password changed (not shown)']);
  assert.match(p.sql, /^ALTER ROLE "app" WITH .* PASSWORD 'SCRAM-SHA-256\$/);
  assert.ok(!p.sql.includes('sekret-password-2'));
  const q = rolePlan(user({ options: ['NOLOGIN'] }), role({ verifier }), undefined);
  assert.deepEqual(q.changes, ['LOGIN -> NOLOGIN']);
  assert.ok(!q.sql.includes('PASSWORD'));
});

test('only state: absent drops a user or a database', () => {
  assert.deepEqual(rolePlan(user({ state: 'absent' }), role(), undefined), { changes: ['drop'], sql: 'DROP ROLE "app";' });
  assert.deepEqual(rolePlan(user({ state: 'absent' }), null, undefined), { changes: [], sql: '' });
  const db = { name: 'shop', state: 'absent' as const, extensions: [] };
  assert.deepEqual(databasePlan(db, { owner: 'app', extensions: [] }, 'postgres').sql, ['DROP DATABASE "shop";']);
  assert.deepEqual(databasePlan(db, null, 'postgres').changes, []);
});

test('databases: created with their owner, owner changed, missing extensions created, never dropped', () => {
  const db = { name: 'shop', state: 'present' as const, owner: 'app', extensions: ['pg_trgm', 'uuid-ossp'] };
  assert.deepEqual(databasePlan(db, null, 'postgres'), {
    changes: ['create (owner app)', 'extensions pg_trgm, uuid-ossp'],
    sql: ['CREATE DATABASE "shop" OWNER "app";'],
    inDb: ['CREATE EXTENSION IF NOT EXISTS "pg_trgm";', 'CREATE EXTENSION IF NOT EXISTS "uuid-ossp";'],
  });
  assert.deepEqual(databasePlan(db, { owner: 'postgres', extensions: ['plpgsql', 'pg_trgm'] }, 'postgres').changes, ['owner postgres -> app', 'extension uuid-ossp']);
  assert.deepEqual(databasePlan(db, { owner: 'app', extensions: ['plpgsql', 'pg_trgm', 'uuid-ossp', 'hstore'] }, 'postgres').changes, []);
  assert.deepEqual(databasePlan({ ...db, owner: undefined, extensions: [] }, null, 'postgres').sql, ['CREATE DATABASE "shop" OWNER "postgres";']);
});

test("pg_hba: a LOGIN user's rules from the HAProxy hosts by default, or from the addresses given", () => {
  const inv = {
    users: [
      user(),
      user({ name: 'report', pg_hba: { databases: ['shop', 'stats'], from: ['10.2.0.0/16', 'haproxy', 'fd00::7'] } }),
      user({ name: 'group_role', options: ['NOLOGIN'] }),
      user({ name: 'gone', state: 'absent' }),
    ],
    hostsWithRole: () => [{ address: '10.1.0.1' }, { address: '10.1.0.2' }],
  } as unknown as Inventory;
  assert.deepEqual(userHbaRules(inv), [
    'host all app 10.1.0.1/32 scram-sha-256',
    'host all app 10.1.0.2/32 scram-sha-256',
    'host shop report 10.2.0.0/16 scram-sha-256',
    'host shop report 10.1.0.1/32 scram-sha-256',
    'host shop report 10.1.0.2/32 scram-sha-256',
    'host shop report fd00::7/128 scram-sha-256',
    'host stats report 10.2.0.0/16 scram-sha-256',
    'host stats report 10.1.0.1/32 scram-sha-256',
    'host stats report 10.1.0.2/32 scram-sha-256',
    'host stats report fd00::7/128 scram-sha-256',
  ]);
});

// ---------------------------------------------------------------- the inventory

const SECRETS = readFileSync('test/fixtures/secrets/test-secrets.yaml', 'utf8');

const load = (extra: string, secrets = `${TEST_SECRETS}users:\n  app: app-password-1\n`) => loadWith(extra, secrets);

test('users and databases load with their defaults; none by default', async () => {
  const none = await load('');
  assert.deepEqual([none.inv?.users, none.inv?.databases], [[], []]);
  const { inv, lines } = await load('users:\n  - name: app\ndatabases:\n  - name: shop\n    owner: app\n');
  assert.deepEqual(lines, []);
  assert.deepEqual(inv!.users, [user()]);
  assert.deepEqual(inv!.databases, [{ name: 'shop', owner: 'app', state: 'present', extensions: [] }]);
  assert.equal(inv!.secrets!.users!.app, 'app-password-1');
});

test('bad users and databases: every schema problem located', async () => {
  const { lines } = await load(
    [
      'users:',
      '  - name: Bad-Name', // 21
      '    pg_hba: {from: [10.0.0.0/33, nowhere, haproxy]}',
      '    options: [LOGIN, SUPER]',
      '',
    ].join('\n'),
  );
  const expected = 'expected an IPv4/IPv6 address or a CIDR (10.0.0.0/24), or haproxy (the HAProxy hosts)';
  assert.deepEqual(lines, [
    'inv.yml:21:11: users[0].name: got "Bad-Name", expected a role name: a-z, 0-9 and _, starting with a letter or _, at most 63',
    `inv.yml:22:21: users[0].pg_hba.from[0]: got "10.0.0.0/33", bad prefix length, ${expected}`,
    `inv.yml:22:34: users[0].pg_hba.from[1]: got "nowhere", not an address, ${expected}`,
    'inv.yml:23:22: users[0].options[1]: got "SUPER", expected one of: SUPERUSER, NOSUPERUSER, CREATEDB, NOCREATEDB, CREATEROLE, NOCREATEROLE, INHERIT, NOINHERIT, LOGIN, NOLOGIN, REPLICATION, NOREPLICATION, BYPASSRLS, NOBYPASSRLS',
  ]);
});

test('users and databases that contradict each other or pgha: located', async () => {
  const { lines } = await load(
    [
      'users:',
      '  - name: app', // 21
      '    options: [LOGIN, NOLOGIN]',
      '  - name: app',
      '  - name: postgres',
      '  - name: old',
      '    state: absent',
      'databases:',
      '  - name: template1', // 28
      '  - name: shop',
      '    owner: nobody',
      '  - name: shop2',
      '    owner: old',
      '',
    ].join('\n'),
    `${SECRETS}users:\n  app: app-password-1\n  postgres: other-password-2\n`,
  );
  assert.deepEqual(lines, [
    'inv.yml:22:14: users[0].options: both LOGIN and NOLOGIN, expected one of them',
    'inv.yml:23:11: users[1].name: user app is also users[0], expected each user once',
    "inv.yml:24:11: users[2].name: postgres is pgha's own superuser role (patroni.users.superuser), expected another name",
    "inv.yml:28:11: databases[0].name: template1 is PostgreSQL's own database, expected another name",
    'inv.yml:30:12: databases[1].owner: nobody is not a user of users:, expected one of: postgres, app',
    'inv.yml:32:12: databases[2].owner: user old is marked state: absent, expected a user that stays',
  ]);
});

test("a LOGIN user without a password in the secrets file: located, the password's key named", async () => {
  const { lines } = await load('users:\n  - name: app\n  - name: other\n  - name: grp\n    options: [NOLOGIN]\n');
  assert.equal(lines.length, 1);
  assert.match(lines[0], /^inv\.yml:22:11: users\[1\]\.name: LOGIN user other has no password in the secrets file .*s\.yml, expected users\.other: PASSWORD there$/);
});
