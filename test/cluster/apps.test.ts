// What applications and on-call see, on the lab's shared cluster: users and databases from the
// inventory (a user logs in through HAProxy and creates a table, a second apply changes nothing,
// a password change takes effect and is never printed). Every change to the live cluster runs
// under the lost-write checker (a writer through HAProxy): 0 acknowledged writes lost.
// Turns the features on in a copy of the lab inventory (apps.yml beside it); the lab's own
// inventory keeps them off, so the other test files are unaffected.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parse, parseDocument, stringify } from 'yaml';
import * as lab from '../lab/lab.js';
import { ensureCluster, pgha, recap } from '../helpers.js';
import { createServer as createHttpServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { createServer as createTcpServer, type Socket } from 'node:net';
import { clusterView, faultContext, leaderName, partitionLeader, poweroffLeader, runScenario, switchover, type FaultContext, type FaultRun, type ScenarioResult } from '../faults/suite.js';

const APP_PASSWORD_1 = `app-pw-${Math.random().toString(36).slice(2)}-one`;
const APP_PASSWORD_2 = `app-pw-${Math.random().toString(36).slice(2)}-two`;

let inventory: string;
let secretsFile: string;
let ctx: FaultContext;
// node1 is .11 of the lab subnet.
const PREFIX = lab.machineAddress('node1').replace(/\d+$/, '');

/** The lab inventory with this file's features turned on, and its own secrets file (lab passwords + users'). */
function writeInventory(base: string, appPassword: string, hook?: { url: string; token: string }, monitoring = false): void {
  const doc = parseDocument(readFileSync(base, 'utf8'));
  const labSecrets = String(doc.get('secrets'));
  // Beside the lab's secrets: the cluster CA (<cluster>.ca.crt) is kept beside the secrets file.
  secretsFile = join(dirname(labSecrets), 'apps.secrets.yml');
  const hookSecret = hook ? `webhook_headers:\n  oncall:\n    Authorization: ${JSON.stringify(`Bearer ${hook.token}`)}\n` : '';
  writeFileSync(secretsFile, `${readFileSync(labSecrets, 'utf8').trimEnd()}\nusers:\n  app: ${JSON.stringify(appPassword)}\n${hookSecret}`, { mode: 0o600 });
  chmodSync(secretsFile, 0o600);
  doc.set('secrets', secretsFile);
  doc.set('users', [{ name: 'app', options: ['LOGIN'], pg_hba: { databases: ['shop'], from: ['haproxy'] } }, { name: 'readers', options: ['NOLOGIN'] }]);
  doc.set('databases', [{ name: 'shop', owner: 'app', extensions: ['pg_trgm'] }]);
  if (monitoring) doc.set('monitoring', true);
  if (hook) doc.set('notifications', { webhooks: [{ name: 'oncall', url: hook.url, headers: { 'X-Team': 'dba' }, timeout: 3 }] });
  inventory = join(dirname(base), 'apps.yml');
  writeFileSync(inventory, doc.toString());
}

/** A planned switchover the operator's way, `pgha switchover` (with a VIP the old leader releases it first); its milestones go to the notes. */
function pghaSwitchover(c: FaultContext) {
  return async (r: FaultRun) => {
    const candidate = c.members.find((m) => m.name !== r.leader)!.name;
    const s = await pgha(['switchover', '-i', inventory, '--candidate', candidate, '--yes']);
    assert.equal(s.code, 0, s.stdout + s.stderr);
    r.note(`pgha switchover: ${s.stdout.split('\n').filter((l) => /released|VIP|Patroni answered|done/.test(l)).map((l) => l.trim()).join(' | ')}`);
  };
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
    // From a cluster without them (an earlier run of this file leaves them behind, and PgBouncer's pool may still be connected to shop).
    const reset = await lab.ssh(await leaderName(ctx), 'sudo -u postgres psql -XAtq -v ON_ERROR_STOP=1 -c "drop database if exists shop with (force)" -c "drop role if exists app" -c "drop role if exists readers"');
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

// ---------------------------------------------------------------- notifications

interface Received {
  at: number;
  body: { event: string; id: string; cluster: string; member: string; old_role: string | null; new_role: string | null; timeline: number | null; time: string };
  headers: IncomingHttpHeaders;
  path: string;
}

const HOOK_PORT = 18700 + (Number(lab.machineAddress('node1').split('.')[2]) % 100);
const HOOK_TOKEN = `tok${Math.random().toString(36).slice(2)}`;
const PATH_TOKEN = `p${Math.random().toString(36).slice(2)}`;
const received: Received[] = [];
let receiver: Server | undefined;
let blackhole: { close: () => void } | undefined;
const bridgeHost = () => lab.machineAddress('node1').replace(/\d+$/, '1');
const hookSettings = () => ({ url: `http://${bridgeHost()}:${HOOK_PORT}/hook/${PATH_TOKEN}`, token: HOOK_TOKEN });

/** The webhook receiver, on the lab bridge's host address: records every POST, answers 200. */
function startReceiver(): Promise<void> {
  receiver = createHttpServer((req, res) => {
    let data = '';
    req.on('data', (d) => (data += d));
    req.on('end', () => {
      try {
        received.push({ at: Date.now(), body: JSON.parse(data), headers: req.headers, path: req.url ?? '' });
      } catch {
        /* not JSON: not counted */
      }
      res.writeHead(200).end('ok');
    });
  });
  return new Promise((res) => receiver!.listen(HOOK_PORT, bridgeHost(), () => res()));
}

/** A receiver that hangs: accepts connections and never answers (worse than one that is down). */
function startBlackhole(): Promise<void> {
  const sockets: Socket[] = [];
  const server = createTcpServer((s) => void sockets.push(s));
  blackhole = { close: () => { sockets.forEach((s) => s.destroy()); server.close(); } };
  return new Promise((res) => server.listen(HOOK_PORT, bridgeHost(), () => res()));
}

/** When (test clock) a member other than `old` is first seen as the running leader, polled every 200 ms. */
function watchLeader(old: string, until: () => boolean): Promise<number | null> {
  return (async () => {
    while (!until()) {
      const m = (await clusterView(ctx).catch(() => null))?.find((x) => x.role === 'leader' && x.name !== old && (x.state === 'running' || x.state === 'streaming'));
      if (m) return Date.now();
      await new Promise((r) => setTimeout(r, 200));
    }
    return null;
  })();
}

/**
 * An event is due within 5 s of the role change it reports (its time: Patroni's callback, once
 * PostgreSQL is promoted). Patroni's REST API names the new leader before that, as soon as it
 * holds the leader key: from that moment the bound leaves room for PostgreSQL's promotion too,
 * which took up to 3 s on a loaded 2-core machine.
 */
const SEEN_SLACK_MS = 8000;

/** A fault under the checker, with the time the new leader was first seen. */
async function roleChange(name: string, fault: (c: FaultContext) => (r: FaultRun) => Promise<void>): Promise<{ result: ScenarioResult; from: number; seen: number | null; leaderBefore: string }> {
  let from = 0;
  let seen: number | null = null;
  const { result } = await runScenario(ctx, name, async (r) => {
    from = Date.now();
    let done = false;
    const watch = watchLeader(r.leader, () => done);
    try {
      await fault(ctx)(r);
    } finally {
      seen = await Promise.race([watch, new Promise<null>((res) => setTimeout(() => res(null), 1000))]);
      done = true;
    }
  });
  assert.deepEqual(result.problems, [], JSON.stringify(result));
  return { result, from, seen, leaderBefore: result.leaderBefore };
}

/** The output of the apply that installed the notifier and the exporters. */
let notifierApply = '';

const roleEvents = (from: number) => received.filter((e) => e.at >= from && e.body.event === 'role_change');

describe('failover notifications (webhooks)', { timeout: 20 * 60_000 }, () => {
  let failoverWithReceiver: number;
  after(() => {
    receiver?.close();
    blackhole?.close();
  });

  before(async () => {
    await startReceiver();
    // Metrics too: one apply installs the notifier and the exporters (the metrics tests below check them).
    writeInventory(join(dirname(inventory), 'lab.yml'), APP_PASSWORD_2, hookSettings(), true);
    ctx = await faultContext(inventory, () => {});
  });

  test('apply installs the notifier; pgha notify test delivers one test event, with the secret header, and prints no secret', async () => {
    const out = await applyUnderWriter('notifications and monitoring installed');
    notifierApply = out;
    for (const n of ['node1', 'node2', 'node3']) {
      const on = await lab.ssh(n, 'sudo stat -c "%U %a" /etc/pgha/notify.json; sudo grep -A1 "callbacks:" /etc/patroni/config.yml | tail -1');
      assert.equal(on.stdout.trim().replace(/\s+/g, ' '), 'postgres 600 on_role_change: "/usr/local/lib/pgha/notify"', `${n}: ${out}`);
    }
    const r = await pgha(['notify', 'test', '-i', inventory, '--member', 'node2']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`^test event from node2 to 1 webhook\\n  oncall \\(http://${bridgeHost().replace(/\./g, '\\.')}:${HOOK_PORT}\\): HTTP 200 after [\\d.]+s \\(1 try\\)\\n$`));
    for (const secret of [HOOK_TOKEN, PATH_TOKEN]) assert.ok(!(r.stdout + r.stderr + out).includes(secret), 'a secret was printed');
    const tests = received.filter((e) => e.body.event === 'test');
    assert.equal(tests.length, 1);
    assert.equal(tests[0].headers.authorization, `Bearer ${HOOK_TOKEN}`);
    assert.equal(tests[0].headers['x-team'], 'dba');
    assert.equal(tests[0].path, `/hook/${PATH_TOKEN}`);
    assert.deepEqual([tests[0].body.cluster, tests[0].body.member], ['lab', 'node2']);

    const none = await pgha(['notify', 'test', '-i', join(dirname(inventory), 'lab.yml')]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /notifications\.webhooks is empty: there is no webhook to send a test event to/);
  });

  test('a switchover: exactly one event per member whose role changed, each within 5 s', async () => {
    const { from, seen, leaderBefore, result } = await roleChange('switchover with notifications', switchover);
    await new Promise((r) => setTimeout(r, 6000));
    const events = roleEvents(from);
    const summary = events.map((e) => `${e.body.member} ${e.body.old_role}->${e.body.new_role} tl ${e.body.timeline} after ${(e.at - Date.parse(e.body.time)) / 1000}s`);
    assert.deepEqual(events.map((e) => `${e.body.member}:${e.body.new_role}`).sort(), [`${leaderBefore}:replica`, `${result.leaderAfter}:leader`].sort(), summary.join('; '));
    for (const e of events) assert.ok(e.at - Date.parse(e.body.time) <= 5000, `slow: ${summary.join('; ')}`);
    const promoted = events.find((e) => e.body.new_role === 'leader')!;
    assert.ok(seen !== null && Math.abs(promoted.at - seen) <= SEEN_SLACK_MS, `the promotion event came ${(promoted.at - (seen ?? 0)) / 1000}s from the leader change`);
    assert.equal(promoted.body.old_role, 'replica');
    assert.ok((promoted.body.timeline ?? 0) >= 2, `timeline ${promoted.body.timeline}`);
    console.log(`# switchover events: ${summary.join('; ')}`);
  });

  test('the leader powered off: the new leader sends exactly one event within 5 s', async () => {
    const { from, seen, leaderBefore, result } = await roleChange('leader powered off with notifications', poweroffLeader);
    await new Promise((r) => setTimeout(r, 6000));
    failoverWithReceiver = result.unavailabilityS;
    const events = roleEvents(from);
    const summary = events.map((e) => `${e.body.member} ${e.body.old_role}->${e.body.new_role} after ${(e.at - Date.parse(e.body.time)) / 1000}s`);
    const promoted = events.filter((e) => e.body.new_role === 'leader');
    assert.equal(promoted.length, 1, summary.join('; '));
    assert.equal(promoted[0].body.member, result.leaderAfter);
    assert.notEqual(promoted[0].body.member, leaderBefore);
    assert.ok(promoted[0].at - Date.parse(promoted[0].body.time) <= 5000 && seen !== null && Math.abs(promoted[0].at - seen) <= SEEN_SLACK_MS, summary.join('; '));
    assert.equal(new Set(events.map((e) => `${e.body.member}:${e.body.new_role}`)).size, events.length, `a duplicate event: ${summary.join('; ')}`);
    console.log(`# power-off events: ${summary.join('; ')}; write unavailability ${result.unavailabilityS}s`);
  });

  test('a webhook receiver that hangs does not slow the failover down', async () => {
    await new Promise<void>((r) => receiver!.close(() => r()));
    await startBlackhole();
    try {
      const { result } = await roleChange('leader powered off, webhook receiver hanging', poweroffLeader);
      console.log(`# failover with the receiver answering: ${failoverWithReceiver}s; hanging: ${result.unavailabilityS}s`);
      // Noise on 2 shared cores is a few seconds either way; a blocked promotion would cost the notifier's 3 s timeout x 5 tries.
      assert.ok(result.unavailabilityS <= failoverWithReceiver + 4, `failover took ${result.unavailabilityS}s with the receiver hanging, ${failoverWithReceiver}s with it answering`);
    } finally {
      blackhole?.close();
    }
  });
});

// ---------------------------------------------------------------- metrics

describe('metrics (monitoring: true)', { timeout: 20 * 60_000 }, () => {
  test('apply installed the exporters; every endpoint answers with its metric names; verify checks them', async () => {
    // (An earlier run may have installed them: the outcome is checked, not the changes.)
    assert.match(notifierApply, /ok +monitoring: 16 metrics endpoints answer/);
    // After the failovers above (a member rebooted): pgha verify's check, which asks each endpoint again after a miss.
    const v = await pgha(['verify', '-i', inventory]);
    assert.match(v.stdout, /ok +monitoring: 16 metrics endpoints answer/, v.stdout + v.stderr);
    const expected: [string, number, string[]][] = [
      ['node1', 8008, ['patroni_primary{scope="lab"}', 'patroni_xlog_replayed_location', 'patroni_failsafe_mode_is_active']],
      ['node2', 2381, ['etcd_server_has_leader 1', 'etcd_server_is_leader']],
      ['node3', 8405, ['haproxy_process_nbthread', 'haproxy_backend_active_servers{proxy="primary"} 1', 'haproxy_server_status{proxy="primary",server="node1"']],
      ['node1', 9187, ['pg_up 1', 'pg_stat_database_xact_commit', 'pgha_archiver_archived_count', 'pgha_archiver_last_failed_time']],
      ['node4', 9100, ['node_load1', 'pgha_backup_status_ok{stanza="main"} 1', 'pgha_backup_last_completed_timestamp_seconds{stanza="main",type="full"}']],
    ];
    for (const [host, port, names] of expected) {
      // Patroni's REST API speaks TLS (the default): asked from the host, verified against the cluster CA.
      const url = `${port === 8008 ? 'https' : 'http'}://${lab.machineAddress(host)}:${port}/metrics`;
      const body = (await lab.ssh(host, `curl -sS --max-time 10 --cacert /etc/pgha/tls/ca.crt ${url}`)).stdout;
      for (const n of names) assert.ok(body.includes(n), `${host}:${port}/metrics lacks ${n}`);
    }
    // Every certificate's end of validity, for the expiry alert.
    const certs = (await lab.ssh('node2', `curl -sS --max-time 10 http://${lab.machineAddress('node2')}:9100/metrics | grep '^pgha_certificate_not_after_seconds'`)).stdout;
    for (const f of ['ca', 'etcd', 'postgres']) {
      const m = new RegExp(`^pgha_certificate_not_after_seconds\\{path="/etc/pgha/tls/${f}\\.crt"\\} (\\S+)$`, 'm').exec(certs);
      assert.ok(m && Number(m[1]) * 1000 > Date.now() + 300 * 86_400_000, `${f}.crt: ${certs}`);
    }
    // The exporter's role: pg_monitor and nothing else.
    const role = await lab.ssh(await leaderName(ctx), `sudo -u postgres psql -XAtc "select rolsuper, rolcreaterole, rolcreatedb, rolcanlogin, rolpassword is null, array(select b.rolname from pg_auth_members m join pg_roles b on b.oid = m.roleid where m.member = r.oid) from pg_authid r where rolname = 'pgha_monitor'"`);
    assert.equal(role.stdout.trim(), 'f|f|f|t|t|{pg_monitor}');
  });

  test('pgha prometheus writes a scrape config and rules that promtool accepts', async () => {
    const dir = join(dirname(inventory), 'prometheus');
    const r = await pgha(['prometheus', '-i', inventory, '-o', dir]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const check = spawnSync('promtool', ['check', 'rules', join(dir, 'pgha-lab-rules.yml')], { encoding: 'utf8' });
    assert.equal(check.status, 0, check.stdout + check.stderr);
    assert.match(check.stdout, /SUCCESS: 11 rules found/);
    // With TLS the scrape config verifies Patroni against the cluster CA, written beside it: promtool reads it.
    writeFileSync(join(dir, 'prometheus.yml'), stringify({ ...parse(readFileSync(join(dir, 'pgha-lab-scrape.yml'), 'utf8')), rule_files: ['pgha-lab-rules.yml'] }));
    const config = spawnSync('promtool', ['check', 'config', join(dir, 'prometheus.yml')], { encoding: 'utf8' });
    assert.equal(config.status, 0, config.stdout + config.stderr);
    assert.match(readFileSync(join(dir, 'pgha-lab-ca.crt'), 'utf8'), /^-----BEGIN CERTIFICATE-----/);
    const off = await pgha(['prometheus', '-i', join(dirname(inventory), 'lab.yml'), '-o', dir]);
    assert.equal(off.code, 2);
    assert.match(off.stderr, /monitoring is not true/);
  });
});

// ---------------------------------------------------------------- the virtual IP

const VIP = lab.machineAddress('node1').replace(/\d+$/, '100');
const DB_HOSTS = ['node1', 'node2', 'node3'];

/** Who holds the VIP, asked in each machine's network namespace from the lab host (a partitioned machine too). */
function holders(): string[] {
  const dir = lab.labConfig().dir;
  return DB_HOSTS.filter((n) => {
    let pid = '';
    try {
      pid = readFileSync(join(dir, 'machines', n, 'init.pid'), 'utf8').trim();
    } catch {
      return false; // powered off
    }
    const r = spawnSync('nsenter', ['-t', pid, '-n', 'ip', '-o', 'addr', 'show'], { encoding: 'utf8', timeout: 5000 });
    return r.stdout.includes(` ${VIP}/`);
  });
}

/** Samples the holders every 200 ms until stopped: the most hosts holding it at once, and when the new leader first held it. */
function watchHolders(): { stop: () => Promise<{ maxAtOnce: number; samples: number; twice: string[]; firstBy: Map<string, number>; longestNoneS: number }> } {
  let running = true;
  let maxAtOnce = 0;
  let samples = 0;
  const twice: string[] = [];
  const firstBy = new Map<string, number>();
  let noneSince: number | null = null;
  let longestNone = 0;
  const loop = (async () => {
    while (running) {
      const h = holders();
      const now = Date.now();
      samples++;
      maxAtOnce = Math.max(maxAtOnce, h.length);
      if (h.length > 1) twice.push(`${new Date(now).toISOString()} ${h.join('+')}`);
      for (const n of h) if (!firstBy.has(n)) firstBy.set(n, now);
      // A stretch without a holder counts once some host has held it (not while vip-manager is being installed).
      if (h.length === 0) {
        if (firstBy.size) noneSince ??= now;
      }
      else if (noneSince !== null) {
        longestNone = Math.max(longestNone, now - noneSince);
        noneSince = null;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { maxAtOnce, samples, twice, firstBy, longestNoneS: Math.round(longestNone / 100) / 10 };
    },
  };
}

describe('a virtual IP on the leader (vip-manager)', { timeout: 30 * 60_000 }, () => {
  let viaVip: FaultContext;

  before(async () => {
    const doc = parseDocument(readFileSync(inventory, 'utf8'));
    doc.set('vip', { address: VIP, prefix: 24, interface: 'host0' });
    writeFileSync(inventory, doc.toString());
    ctx = await faultContext(inventory, () => {});
    // A client of the VIP, on PostgreSQL's port.
    viaVip = { ...ctx, haproxy: [{ name: 'vip', host: VIP, port: ctx.inv.patroni.postgres_port }] };
  });

  test('apply --restart-pending: the VIP is on the leader only; PostgreSQL restarted member by member to listen on it, the VIP never on two hosts', async () => {
    // listen_addresses changes (a pending restart): replicas, a switchover (the old leader releases the VIP first), the old leader.
    const watch = watchHolders();
    let out = '';
    const { result } = await runScenario(ctx, 'vip installed, apply --restart-pending', async (r) => {
      const a = await pgha(['apply', '-i', inventory, '--restart-pending'], { timeoutMs: 15 * 60_000 });
      out = a.stdout + a.stderr;
      r.note(`apply exit ${a.code} in ${(a.ms / 1000).toFixed(1)} s`);
      assert.equal(a.code, 0, out);
    });
    const w = await watch.stop();
    console.log(`# VIP apply --restart-pending: ${w.samples} samples, at most ${w.maxAtOnce} holder(s), longest without a holder ${w.longestNoneS} s; ${result.acknowledged} acknowledged, ${result.lost} lost`);
    assert.deepEqual(result.problems, [], JSON.stringify(result));
    assert.equal(result.lost, 0);
    assert.match(out, /ok +vip: .* on the leader only/);
    // (A rerun on a lab whose PostgreSQL listens on every address already has nothing to restart.)
    if (/switch over from/.test(out)) assert.match(out, /released the VIP/);
    assert.equal(w.maxAtOnce, 1, `on two hosts at once: ${w.twice.join('; ')}`);
    assert.deepEqual(holders(), [await leaderName(ctx)]);
    const listen = await lab.ssh(await leaderName(ctx), 'sudo -u postgres psql -XAtc "show listen_addresses"');
    assert.equal(listen.stdout.trim(), '*');
  });

  for (const [name, fault] of [['pgha switchover', pghaSwitchover], ['leader partitioned', partitionLeader]] as const) {
    test(`${name}: the VIP moves to the new leader within the failover time, never on two hosts; a client of the VIP loses nothing`, async () => {
      const watch = watchHolders();
      let cut = 0;
      const { result } = await runScenario(viaVip, `VIP: ${name}`, async (r) => {
        cut = Date.now();
        await fault(viaVip)(r);
      });
      const w = await watch.stop();
      const moved = w.firstBy.get(result.leaderAfter);
      console.log(`# VIP ${name}: ${w.samples} samples, at most ${w.maxAtOnce} holder(s), longest without a holder ${w.longestNoneS} s; on ${result.leaderAfter} ${moved ? ((moved - cut) / 1000).toFixed(1) : '?'} s after the fault; writes through the VIP: ${result.acknowledged} acknowledged, ${result.lost} lost, longest gap ${result.unavailabilityS} s; ${result.notes}`);
      assert.deepEqual(result.problems, [], JSON.stringify(result));
      assert.equal(result.lost, 0);
      assert.notEqual(result.leaderAfter, result.leaderBefore);
      assert.equal(w.maxAtOnce, 1, `on two hosts at once: ${w.twice.join('; ')}`);
      assert.ok(w.samples > 20);
      assert.deepEqual(holders(), [result.leaderAfter]);
      assert.ok(moved !== undefined && moved - cut <= (ctx.inv.timing.patroni.ttl + 10) * 1000, 'the VIP reached the new leader late');
    });
  }
});

// ---------------------------------------------------------------- PgBouncer

const BOUNCER_PASSWORD = `bouncer-${Math.random().toString(36).slice(2)}`;

describe('PgBouncer on the HAProxy hosts', { timeout: 20 * 60_000 }, () => {
  before(async () => {
    const doc = parseDocument(readFileSync(inventory, 'utf8'));
    doc.set('pgbouncer', {});
    writeFileSync(inventory, doc.toString());
    writeFileSync(secretsFile, `${readFileSync(secretsFile, 'utf8').trimEnd()}\npgbouncer_password: ${JSON.stringify(BOUNCER_PASSWORD)}\n`, { mode: 0o600 });
    ctx = await faultContext(inventory, () => {});
  });

  test('apply installs PgBouncer; verify logs in through each; pgbench through PgBouncer during a switchover', async () => {
    const out = await applyUnderWriter('pgbouncer installed');
    assert.match(out, /ok +pgbouncer \(node1\): port 6432: login through HAProxy to the leader/);
    assert.ok(!out.includes(BOUNCER_PASSWORD));
    // The application's user, with its own password, through node1's PgBouncer (transaction pooling).
    const bouncer = `-h ${lab.machineAddress('node1')} -p 6432 -U app`;
    const PGBENCH = '/usr/lib/postgresql/15/bin/pgbench';
    const init = await lab.ssh('node3', `PGPASSWORD=$(cat); export PGPASSWORD; ${PGBENCH} ${bouncer} -i -s 1 -q shop 2>&1`, { input: APP_PASSWORD_2, timeoutMs: 120_000 });
    assert.equal(init.code, 0, init.stdout);
    // pgbench aborts a client whose connection fails; when all have aborted it is started again.
    // It runs in 5 s rounds until the test asks it to stop (10 s after the switchover returned,
    // however long that took on a loaded machine), at most MAX_S. Every transaction is logged with
    // its end time (-l), so gaps are measured exactly.
    const MAX_S = 120;
    const AFTER_S = 10;
    const loop = [
      'PGPASSWORD=$(cat); export PGPASSWORD; rm -rf /tmp/pgha-pgb; mkdir -p /tmp/pgha-pgb; cd /tmp/pgha-pgb',
      `end=$(( $(date +%s) + ${MAX_S} )); i=0`,
      `while [ ! -e stop ] && left=$(( end - $(date +%s) )) && [ $left -ge 1 ]; do i=$((i+1)); ${PGBENCH} ${bouncer} -n -c 8 -j 2 -T $(( left < 5 ? left : 5 )) -l --log-prefix=tx$i shop > out$i 2>&1 || sleep 0.2; done`,
      `echo "runs $i aborted $(cat out* | grep -c 'aborted in command')"`,
      `cat out* | grep -E 'error|aborted' | sed -E 's/client [0-9]+/client N/g' | sort | uniq -c | sort -rn | head -5`,
      "echo '--- ends'; cat tx* | awk '$3 != \"failed\" { printf \"%.3f\\n\", $5 + $6 / 1000000 }' | sort -n",
      "echo '--- failed'; cat tx* | awk '$3 == \"failed\"' | wc -l",
    ].join('; ');
    let bench = { code: 0, stdout: '', stderr: '' };
    const switched = { from: 0, to: 0 };
    const { result } = await runScenario(ctx, 'pgbench through PgBouncer, pgha switchover', async (r) => {
      const running = lab.ssh('node3', loop, { input: APP_PASSWORD_2, timeoutMs: (MAX_S + 60) * 1000 });
      await new Promise((res) => setTimeout(res, 8_000));
      switched.from = Date.now() / 1000;
      try {
        await pghaSwitchover(ctx)(r);
      } finally {
        switched.to = Date.now() / 1000;
        await new Promise((res) => setTimeout(res, AFTER_S * 1000));
        await lab.ssh('node3', 'touch /tmp/pgha-pgb/stop');
        bench = await running;
      }
    });
    assert.deepEqual(result.problems, [], JSON.stringify(result));
    assert.equal(result.lost, 0);
    const [summary, rest] = bench.stdout.split('--- ends\n');
    const [endsText, failedText] = rest.split('--- failed\n');
    const ends = endsText.split('\n').filter(Boolean).map(Number);
    const runs = Number(/runs (\d+)/.exec(summary)?.[1] ?? 0);
    const aborted = Number(/aborted (\d+)/.exec(summary)?.[1] ?? 0);
    const failed = Number(failedText.trim());
    // The longest stretch without a completed transaction, and the first one after the switchover (pgha's switchover returns once HAProxy routes to the new leader).
    let gap = 0;
    let gapAt = 0;
    for (let i = 1; i < ends.length; i++) if (ends[i] - ends[i - 1] > gap) [gap, gapAt] = [ends[i] - ends[i - 1], ends[i - 1]];
    const firstAfter = ends.find((t) => t > switched.to);
    console.log(
      `# pgbench through PgBouncer (8 clients, until ${AFTER_S} s after it), pgha switchover ${(switched.to - switched.from).toFixed(1)} s long: ${ends.length} transactions, ${failed} failed in pgbench's log, ${aborted} client(s) aborted ` +
        `(their transaction in flight failed), ${runs} pgbench run(s); longest stretch without a transaction ${gap.toFixed(2)} s (from +${(gapAt - switched.from).toFixed(1)} s after the switchover began); ` +
        `first transaction ${firstAfter === undefined ? 'never' : `${(firstAfter - switched.to).toFixed(2)} s`} after pgha switchover returned`,
    );
    console.log(`# pgbench messages: ${summary.replace(/\s+/g, ' ').slice(0, 600)}`);
    assert.ok(ends.filter((t) => t < switched.from).length > 0, `no transaction through PgBouncer before the switchover:\n${bench.stdout.slice(0, 2000)}`);
    // What pgha controls: PgBouncer reaches the new primary through HAProxy right after the switchover.
    assert.ok(firstAfter !== undefined && firstAfter - switched.to <= AFTER_S, `no transaction through PgBouncer within ${AFTER_S} s after the switchover:\n${summary}`);
  });
});
