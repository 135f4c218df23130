// What applications and on-call see, on the lab's shared cluster: users and databases from the
// inventory (a user logs in through HAProxy and creates a table, a second apply changes nothing,
// a password change takes effect and is never printed). Every change to the live cluster runs
// under the lost-write checker (a writer through HAProxy): 0 acknowledged writes lost.
// Turns the features on in a copy of the lab inventory (apps.yml beside it); the lab's own
// inventory keeps them off, so the other test files are unaffected.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseDocument } from 'yaml';
import * as lab from '../lab/lab.js';
import { ensureCluster, pgha, recap } from '../helpers.js';
import { faultContext, leaderName, runScenario, type FaultContext } from '../faults/suite.js';

const APP_PASSWORD_1 = `app-pw-${Math.random().toString(36).slice(2)}-one`;
const APP_PASSWORD_2 = `app-pw-${Math.random().toString(36).slice(2)}-two`;

let inventory: string;
let secretsFile: string;
let ctx: FaultContext;
// node1 is .11 of the lab subnet.
const PREFIX = lab.machineAddress('node1').replace(/\d+$/, '');

/** The lab inventory with this file's features turned on, and its own secrets file (lab passwords + users'). */
function writeInventory(base: string, appPassword: string): void {
  const doc = parseDocument(readFileSync(base, 'utf8'));
  const labSecrets = String(doc.get('secrets'));
  secretsFile = join(dirname(base), 'apps.secrets.yml');
  writeFileSync(secretsFile, `${readFileSync(labSecrets, 'utf8').trimEnd()}\nusers:\n  app: ${JSON.stringify(appPassword)}\n`, { mode: 0o600 });
  chmodSync(secretsFile, 0o600);
  doc.set('secrets', secretsFile);
  doc.set('users', [{ name: 'app', options: ['LOGIN'], pg_hba: { databases: ['shop'], from: ['haproxy'] } }, { name: 'readers', options: ['NOLOGIN'] }]);
  doc.set('databases', [{ name: 'shop', owner: 'app', extensions: ['pg_trgm'] }]);
  inventory = join(dirname(base), 'apps.yml');
  writeFileSync(inventory, doc.toString());
}

/** psql as `user` through node2's HAProxy primary port, run on node3 (password over stdin). */
async function asUser(user: string, password: string, db: string, sql: string): Promise<{ code: number; out: string }> {
  const conninfo = `host=${lab.machineAddress('node2')} port=5000 user=${user} dbname=${db} connect_timeout=5`;
  const r = await lab.ssh('node3', `PGPASSWORD=$(cat); export PGPASSWORD; psql -XAtq -v ON_ERROR_STOP=1 '${conninfo}' -c "${sql}"`, { timeoutMs: 60_000, input: password });
  return { code: r.code, out: (r.stdout + r.stderr).trim() };
}

/** `pgha apply` under the checker; asserts it exited 0 and lost nothing. Returns its output. */
async function applyUnderWriter(name: string): Promise<string> {
  let out = '';
  const { result } = await runScenario(ctx, name, async (r) => {
    const a = await pgha(['apply', '-i', inventory]);
    out = a.stdout + a.stderr;
    r.note(`apply exit ${a.code} in ${(a.ms / 1000).toFixed(1)} s`);
    assert.equal(a.code, 0, out);
  });
  assert.deepEqual(result.problems, [], JSON.stringify(result));
  assert.equal(result.lost, 0);
  return out;
}

describe('users and databases from the inventory', { timeout: 20 * 60_000 }, () => {
  before(async () => {
    writeInventory(await ensureCluster(), APP_PASSWORD_1);
    ctx = await faultContext(inventory, () => {});
    // From a cluster without them (an earlier run of this file leaves them behind).
    const reset = await lab.ssh(await leaderName(ctx), 'sudo -u postgres psql -XAtq -c "drop database if exists shop" -c "drop role if exists app" -c "drop role if exists readers"');
    assert.equal(reset.code, 0, reset.stderr);
  });

  test('--check shows the users and the database to create, without their passwords, and changes nothing', async () => {
    const r = await pgha(['apply', '-i', inventory, '--check']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /user app: .*create \(NOSUPERUSER .* LOGIN .*, password set\)/);
    assert.match(r.stdout, /user readers: .*create \(.*NOLOGIN/);
    assert.match(r.stdout, /database shop: .*create \(owner app\), extension pg_trgm/);
    assert.ok(!(r.stdout + r.stderr).includes(APP_PASSWORD_1), 'the password was printed');
    assert.notEqual((await asUser('app', APP_PASSWORD_1, 'shop', 'select 1')).code, 0, '--check created the user');
  });

  test('apply creates them: the user logs in through HAProxy and creates a table; a second apply changes nothing', async () => {
    const out = await applyUnderWriter('users and databases created');
    assert.match(out, /user app: .*create/);
    assert.match(out, /database shop: .*create \(owner app\)/);
    assert.ok(!out.includes(APP_PASSWORD_1), 'the password was printed');
    assert.match(out, /ok +databases: 2 user\(s\) and 1 database\(s\) as the inventory says/);

    const made = await asUser('app', APP_PASSWORD_1, 'shop', "create table orders(id int primary key); insert into orders values (1), (2); select count(*) || '|' || current_user || '|' || (select count(*) from pg_extension where extname = 'pg_trgm') from orders");
    assert.deepEqual(made, { code: 0, out: '2|app|1' });
    // The user's pg_hba rules: database shop only, from each HAProxy host (the lab's own broad rule comes after them).
    const leader = await leaderName(ctx);
    const rules = await lab.ssh(leader, `sudo -u postgres psql -XAtc "select array_to_string(database, ',') || ' ' || address || ' ' || auth_method from pg_hba_file_rules where user_name = '{app}' order by line_number"`);
    assert.equal(rules.stdout.trim(), ['11', '12', '13'].map((n) => `shop ${PREFIX}${n} scram-sha-256`).join('\n'));

    const again = await pgha(['apply', '-i', inventory]);
    assert.equal(again.code, 0, again.stdout + again.stderr);
    for (const [host, c] of recap(again.stdout)) assert.equal(c.changed, 0, `${host} changed on the second apply:\n${again.stdout}`);
  });

  test('a password changed in the secrets file takes effect, is reported and never printed', async () => {
    writeInventory(join(dirname(inventory), 'lab.yml'), APP_PASSWORD_2);
    const check = await pgha(['apply', '-i', inventory, '--check', '-v']);
    assert.equal(check.code, 0, check.stdout + check.stderr);
    assert.match(check.stdout, /user app: .*password changed \(not shown\)/);
    const out = await applyUnderWriter('user password changed');
    assert.match(out, /user app: .*password changed \(not shown\)/);
    for (const text of [check.stdout + check.stderr, out]) {
      assert.ok(!text.includes(APP_PASSWORD_1) && !text.includes(APP_PASSWORD_2), 'a password was printed');
    }
    assert.deepEqual(await asUser('app', APP_PASSWORD_2, 'shop', 'select count(*) from orders'), { code: 0, out: '2' });
    const old = await asUser('app', APP_PASSWORD_1, 'shop', 'select 1');
    assert.notEqual(old.code, 0);
    assert.match(old.out, /password authentication failed for user "app"/);
    // Neither password reached PostgreSQL's log or the hosts' command lines: only a verifier was sent, over stdin.
    const logs = await lab.ssh('node1', 'sudo journalctl -u patroni --no-pager --since "-10 min"; sudo cat /var/log/postgresql/*.log 2>/dev/null; sudo grep -rh . /var/lib/postgresql/15/main/log 2>/dev/null | tail -2000', { timeoutMs: 60_000 });
    assert.ok(!logs.stdout.includes(APP_PASSWORD_2) && !logs.stdout.includes(APP_PASSWORD_1));
  });
});
