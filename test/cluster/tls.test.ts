// TLS on the lab's real cluster: a cluster deployed in clear text (tls: false; its apply killed at
// six points on the way, the fault suite's scenario 7, then run again) moved to TLS by
// pgha apply under a writer; then clear text refused on every link and verify-full accepted
// with `pgha tls ca`'s certificate; private keys private; a certificate from another CA named
// by verify and status and replaced by apply; `pgha tls renew` and `pgha tls renew --ca` under a
// writer. Every change under a writer is judged by the lost-write checker. Starts from fresh
// machines (a clear-text cluster needs them) and leaves a verified TLS cluster.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import * as lab from '../lab/lab.js';
import { pgha, recap } from '../helpers.js';
import { connect, type Credentials } from '../faults/checker.js';
import { applyKilledAt, assertNothingLost, faultContext, runScenario, type FaultContext, type KillPoint, type ScenarioResult } from '../faults/suite.js';
import { loadInventory, type Inventory } from '../../src/inventory/index.js';
import { caPaths } from '../../src/components/tls/paths.js';

const log = (s: string) => console.log(`# ${s.replace(/\n/g, '\n# ')}`);
const DB = ['node1', 'node2', 'node3'];
const addr = (name: string) => lab.machineAddress(name);
let inventory: string;
let plainInventory: string;
const results: ScenarioResult[] = [];

async function sh(host: string, cmd: string, input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await lab.ssh(host, cmd, { timeoutMs: 60_000, input });
  return { code: r.code, stdout: r.stdout.trim(), stderr: r.stderr.trim() };
}

function assertNoLoss(name: string, result: ScenarioResult, verifyOut: string): void {
  results.push(result);
  assertNothingLost(name, result, verifyOut);
}

/**
 * Credentials whose CA is read afresh at each connection: the cluster CA and, during a rotation,
 * the new one (a client that is given the new CA while both are trusted, as the README says).
 */
function liveCa(c: Credentials, inv: Inventory, preferTls: boolean): Credentials {
  const p = caPaths(inv);
  const read = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8') : '');
  return {
    user: c.user,
    password: c.password,
    preferTls,
    get ca() {
      return read(p.cert) + read(p.nextCert) || undefined;
    },
  };
}

/** A pgha run under the writer; its output is checked by the caller. */
function runPgha(args: string[], out: { stdout: string; code: number }) {
  return async () => {
    const r = await pgha(args, { timeoutMs: 20 * 60_000 });
    out.stdout = r.stdout + r.stderr;
    out.code = r.code;
    if (r.code !== 0) throw new Error(`pgha ${args.join(' ')} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  };
}

/** SHA-256 fingerprints of a host's certificates and CA bundle. */
async function fingerprints(host: string): Promise<string> {
  const r = await sh(host, 'for f in /etc/pgha/tls/etcd.crt /etc/pgha/tls/postgres.crt /etc/pgha/tls/ca.crt; do sudo openssl x509 -noout -fingerprint -sha256 -in $f; done');
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

describe('TLS on every link', { timeout: 60 * 60_000 }, () => {
  before(async () => {
    await lab.down();
    await lab.up(4);
    inventory = lab.labInventoryPath();
    const doc = parseDocument(readFileSync(inventory, 'utf8'));
    doc.set('tls', false);
    const dir = mkdtempSync(join(tmpdir(), 'pgha-plain-'));
    plainInventory = join(dir, 'inventory.yml');
    writeFileSync(plainInventory, doc.toString());
  });

  // The deploy from fresh machines is also the fault suite's scenario 7: apply killed (SIGKILL,
  // like a crash or a lost terminal) at six points, each run getting further, then run again.
  test('tls: false from fresh machines, apply killed at six points then run again: converges, verifies, warns in apply and status', async () => {
    const points: KillPoint[] = [
      { name: 'during packages', when: /== stage packages:/, delayMs: 8000 },
      // Every component's files come before any service starts, HAProxy's among them.
      { name: 'during haproxy', when: /== stage haproxy:/, delayMs: 0 },
      { name: 'after etcd', when: /stage etcd ok/, delayMs: 0 },
      // The stanza is created once the leader runs, before the replicas start.
      { name: 'during pgbackrest stanza', when: /== stage pgbackrest stanza/, delayMs: 1000 },
      { name: 'during patroni start', when: /== stage patroni start \(replicas\)/, delayMs: 2000 },
      { name: 'during the first backup', when: /== stage pgbackrest first backup/, delayMs: 1500 },
    ];
    const t = Date.now();
    for (const p of points) {
      const k = await applyKilledAt(plainInventory, p);
      log(`apply killed ${p.name}: ${k.killed ? 'killed' : 'NOT killed (the run ended first)'}`);
      // Each run gets further than the one before: the kill point must be reached.
      assert.ok(k.killed || /VERIFY/.test(k.out), `${p.name}: the run neither reached the kill point nor finished:\n${k.out}`);
    }
    const r = await pgha(['apply', '-i', plainInventory]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const verified = r.stdout.slice(r.stdout.indexOf('VERIFY'));
    assert.match(verified, /^ok +patroni: leader node\d; 2 replica\(s\) streaming/m, r.stdout);
    assert.doesNotMatch(verified, /FAILED/, r.stdout);
    log(`deploy without TLS, killed at ${points.length} points and run again: ${((Date.now() - t) / 1000).toFixed(1)} s in all`);
    assert.match(r.stdout, /^note: WARNING: tls is false: etcd, Patroni's REST API and PostgreSQL speak clear text/m);
    const st = await pgha(['status', '-i', plainInventory]);
    assert.equal(st.code, 0, st.stdout + st.stderr);
    assert.match(st.stdout, /^WARNING: TLS is off \(tls: false\)/m);
  });

  test('pgha apply moves the running clear-text cluster to TLS under a writer: no acknowledged write lost', async () => {
    const ctx: FaultContext = await faultContext(plainInventory, log);
    const out = { stdout: '', code: -1 };
    const inv = await loadInventory(inventory);
    const { result, verifyOut } = await runScenario(
      ctx,
      'move to TLS',
      async (r) => {
        await runPgha(['apply', '-i', inventory], out)();
        r.note(out.stdout.match(/REST API was away for [\d.]+s/)?.[0] ?? '');
        // From here on the cluster speaks TLS only: the scenario's own questions follow.
        Object.assign(ctx, await faultContext(inventory, log));
      },
      // The writer and the probe start in clear text and use TLS (verified) as soon as it is offered.
      { cred: (c) => liveCa(c, inv, true) },
    );
    log(out.stdout.split('\n').filter((l) => /^tls: /.test(l)).join('\n'));
    assertNoLoss('move to TLS', result, verifyOut);
    assert.match(out.stdout, /moving the running cluster to TLS/);
    assert.match(out.stdout, /the cluster speaks TLS on every link/);
    log(`move to TLS: longest write gap ${result.unavailabilityS} s`);
  });

  test('clear text is refused on every link; verify-full with pgha tls ca succeeds', async () => {
    const [n1, n2] = [addr('node1'), addr('node2')];
    // etcd: no clear-text listener; TLS without a client certificate refused.
    const plainEtcd = await sh('node1', `ETCDCTL_API=3 etcdctl --dial-timeout=2s --command-timeout=3s --endpoints=http://${n1}:2379 endpoint health`);
    assert.notEqual(plainEtcd.code, 0, plainEtcd.stdout);
    const plainLocal = await sh('node1', 'ETCDCTL_API=3 etcdctl --dial-timeout=2s --command-timeout=3s --endpoints=http://127.0.0.1:2379 endpoint health');
    assert.notEqual(plainLocal.code, 0, plainLocal.stdout);
    const noCert = await sh('node1', `ETCDCTL_API=3 etcdctl --dial-timeout=2s --command-timeout=3s --endpoints=https://${n1}:2379 --cacert=/etc/pgha/tls/ca.crt endpoint health`);
    assert.notEqual(noCert.code, 0, noCert.stdout);
    assert.match(noCert.stderr + noCert.stdout, /certificate|handshake|unhealthy/i);
    const withCert = await sh('node1', `sudo -u etcd env ETCDCTL_API=3 etcdctl --endpoints=https://${n1}:2379 --cacert=/etc/pgha/tls/ca.crt --cert=/etc/pgha/tls/etcd.crt --key=/etc/pgha/tls/etcd.key endpoint health`);
    assert.equal(withCert.code, 0, withCert.stderr);
    // Patroni's REST API: https only.
    const plainRest = await sh('node1', `curl -sS --max-time 3 http://${n2}:8008/cluster`);
    assert.notEqual(plainRest.code, 0, plainRest.stdout);
    assert.doesNotMatch(plainRest.stdout, /members/);
    const rest = await sh('node1', `curl -sS --max-time 3 --cacert /etc/pgha/tls/ca.crt https://${n2}:8008/cluster`);
    assert.equal(rest.code, 0, rest.stderr);
    assert.match(rest.stdout, /"members"/);
    // HAProxy's stats page: localhost only.
    const stats = await sh('node1', `curl -sS --max-time 3 -o /dev/null -w '%{http_code}' http://${n2}:7000/`);
    assert.notEqual(stats.code, 0, stats.stdout);
    // PostgreSQL through HAProxy: clear text rejected by pg_hba, verify-full with the CA accepted.
    const inv = await loadInventory(inventory);
    const password = inv.secrets!.superuser_password;
    const plainPg = await sh('node1', `PGPASSWORD=$(cat) psql -XAtq 'host=${n2} port=5000 user=postgres dbname=postgres sslmode=disable connect_timeout=5' -c 'select 1'`, password);
    assert.notEqual(plainPg.code, 0, plainPg.stdout);
    assert.match(plainPg.stderr, /pg_hba\.conf rejects connection .*SSL off|no encryption/, plainPg.stderr);
    const caOut = await pgha(['tls', 'ca', '-i', inventory]);
    assert.equal(caOut.code, 0, caOut.stderr);
    assert.match(caOut.stdout, /^-----BEGIN CERTIFICATE-----\n[\s\S]+-----END CERTIFICATE-----\n$/);
    assert.doesNotMatch(caOut.stdout, /PRIVATE KEY/);
    // From the operator's machine, as a client: the CA from pgha tls ca, verify-full (pg checks the address dialled).
    const client = await connect({ host: n2, port: 5000 }, { user: 'postgres', password, ca: caOut.stdout }, 5000);
    try {
      const r = await client.query('select ssl from pg_stat_ssl where pid = pg_backend_pid()');
      assert.equal(r.rows[0].ssl, true);
    } finally {
      await client.end();
    }
    // The same with psql on a host, verify-full against the CA printed by pgha tls ca.
    const viaPsql = await sh('node1', `printf '%s' '${caOut.stdout.replace(/'/g, '')}' > /tmp/pgha-client-ca.crt; PGPASSWORD=$(cat) psql -XAtq 'host=${n2} port=5000 user=postgres dbname=postgres sslmode=verify-full sslrootcert=/tmp/pgha-client-ca.crt connect_timeout=5' -c 'select pg_is_in_recovery()'`, password);
    assert.equal(viaPsql.code, 0, viaPsql.stderr);
    assert.equal(viaPsql.stdout, 'f');
    // A server verified against another CA is refused.
    const other = await sh('node1', `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /tmp/other.key -out /tmp/other.crt -subj /CN=other -days 1 2>/dev/null && PGPASSWORD=$(cat) psql -XAtq 'host=${n2} port=5000 user=postgres dbname=postgres sslmode=verify-full sslrootcert=/tmp/other.crt connect_timeout=5' -c 'select 1'`, password);
    assert.notEqual(other.code, 0, other.stdout);
    assert.match(other.stderr, /certificate verify failed/);
  });

  test('private keys are 0600 and their service user\'s; nothing secret in render, --check or verbose output', async () => {
    for (const h of DB) {
      assert.equal((await sh(h, 'sudo stat -c "%U %G %a" /etc/pgha/tls/etcd.key')).stdout, 'etcd etcd 600', h);
      assert.equal((await sh(h, 'sudo stat -c "%U %G %a" /etc/pgha/tls/postgres.key')).stdout, 'postgres postgres 600', h);
      assert.equal((await sh(h, 'sudo stat -c "%U %a" /etc/pgha/tls/ca.crt')).stdout, 'root 644', h);
    }
    const inv = await loadInventory(inventory);
    const caKey = caPaths(inv).key;
    assert.equal(statSync(caKey).mode & 0o777, 0o600);
    const keyBody = readFileSync(caKey, 'utf8').split('\n')[1];
    const out = mkdtempSync(join(tmpdir(), 'pgha-render-'));
    const render = await pgha(['render', '-i', inventory, '-o', out]);
    assert.equal(render.code, 0, render.stderr);
    const rendered = (readdirSync(out, { recursive: true, withFileTypes: true }) as { isFile(): boolean; parentPath?: string; path?: string; name: string }[])
      .filter((e) => e.isFile())
      .map((e) => readFileSync(join(e.parentPath ?? e.path!, e.name), 'utf8'))
      .join('\n');
    const check = await pgha(['apply', '-i', inventory, '--check', '-v']);
    assert.equal(check.code, 0, check.stdout + check.stderr);
    for (const [what, text] of [
      ['render', rendered],
      ['apply --check -v', check.stdout + check.stderr],
    ] as const) {
      assert.doesNotMatch(text, /PRIVATE KEY/, what);
      assert.ok(!text.includes(keyBody), `${what} shows the CA key`);
      assert.ok(!text.includes(inv.secrets!.superuser_password), `${what} shows a password`);
    }
    // The hosts' journals hold no private key either.
    for (const h of DB) assert.equal((await sh(h, 'sudo journalctl --no-pager | grep -c "PRIVATE KEY" || true')).stdout, '0', h);
  });

  test('a certificate from another CA on one host: verify and status name the host and the problem; apply replaces it', async () => {
    // node3's etcd certificate, for its own key and names, but signed by a CA of its own.
    const forge = await sh(
      'node3',
      'set -e; cd /tmp; openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout rogue-ca.key -out rogue-ca.crt -subj /CN=rogue -days 30 2>/dev/null; ' +
        `sudo openssl req -new -key /etc/pgha/tls/etcd.key -subj /CN=node3 -addext 'subjectAltName=DNS:node3,IP:${addr('node3')}' > rogue.csr; ` +
        `openssl x509 -req -in rogue.csr -CA rogue-ca.crt -CAkey rogue-ca.key -CAcreateserial -days 30 -copy_extensions copy -out rogue.crt 2>/dev/null; ` +
        'sudo install -o etcd -g etcd -m 0644 rogue.crt /etc/pgha/tls/etcd.crt',
    );
    assert.equal(forge.code, 0, forge.stderr);
    const v = await pgha(['verify', '-i', inventory]);
    assert.equal(v.code, 1, v.stdout + v.stderr);
    assert.match(v.stdout, /^FAILED +tls \(node3\): .*node3: \/etc\/pgha\/tls\/etcd\.crt: not signed by the cluster CA \(issuer: CN=rogue\)/m);
    const st = await pgha(['status', '-i', inventory]);
    assert.equal(st.code, 1, st.stdout + st.stderr);
    assert.match(st.stdout, /^ {2}- certificate node3: \/etc\/pgha\/tls\/etcd\.crt: not signed by the cluster CA \(issuer: CN=rogue\)/m);
    // Whichever etcd host status asks first, etcd is shown as the healthy hosts see it: node3's own
    // view (its client certificate refused everywhere) would call the whole cluster down.
    for (const h of ['node1', 'node2']) assert.match(st.stdout, new RegExp(`^${h} +healthy`, 'm'), st.stdout);
    assert.match(st.stdout, /^node3 +unhealthy \(SSL certificate problem/m, st.stdout);
    const a = await pgha(['apply', '-i', inventory]);
    assert.equal(a.code, 0, a.stdout + a.stderr);
    assert.match(a.stdout, /^node3: changed certificate etcd: issue \(not signed by the cluster CA \(issuer: CN=rogue\)\)/m);
    assert.equal((await pgha(['status', '-i', inventory])).code, 0);
  });

  test('pgha tls renew re-issues every host certificate under a writer: no acknowledged write lost', async () => {
    const before = await Promise.all(DB.map(fingerprints));
    const ctx = await faultContext(inventory, log);
    const out = { stdout: '', code: -1 };
    const { result, verifyOut } = await runScenario(ctx, 'tls renew', async () => runPgha(['tls', 'renew', '-i', inventory], out)());
    assertNoLoss('tls renew', result, verifyOut);
    const after = await Promise.all(DB.map(fingerprints));
    for (let i = 0; i < DB.length; i++) {
      const [b, a] = [before[i].split('\n'), after[i].split('\n')];
      assert.notEqual(a[0], b[0], `${DB[i]}: etcd certificate not renewed`);
      assert.notEqual(a[1], b[1], `${DB[i]}: postgres certificate not renewed`);
      assert.equal(a[2], b[2], `${DB[i]}: the CA must stay`);
    }
    const counts = recap(out.stdout);
    for (const h of DB) assert.equal(counts.get(h)?.changed, 2, `${h}: two certificates re-issued:\n${out.stdout}`);
  });

  test('pgha tls renew --ca rotates the CA under a writer, both trusted meanwhile: no acknowledged write lost', async () => {
    const caBefore = (await pgha(['tls', 'ca', '-i', inventory])).stdout;
    const ctx = await faultContext(inventory, log);
    const inv = await loadInventory(inventory);
    const out = { stdout: '', code: -1 };
    const { result, verifyOut } = await runScenario(ctx, 'tls renew --ca', async () => {
      await runPgha(['tls', 'renew', '--ca', '-i', inventory], out)();
      // The writer keeps its CA; from here on the scenario's own questions need the new one.
      Object.assign(ctx, await faultContext(inventory, log));
    }, { cred: (c) => liveCa(c, inv, false) });
    assertNoLoss('tls renew --ca', result, verifyOut);
    const caAfter = (await pgha(['tls', 'ca', '-i', inventory])).stdout;
    assert.notEqual(caAfter, caBefore);
    assert.equal(caAfter.match(/BEGIN CERTIFICATE/g)?.length, 1, 'the old CA is dropped');
    assert.match(out.stdout, /hosts trust the old and the new CA/);
    assert.match(out.stdout, /the old CA dropped/);
    for (const h of DB) {
      const bundle = (await sh(h, 'cat /etc/pgha/tls/ca.crt')).stdout;
      assert.equal(`${bundle}\n`, caAfter, `${h} trusts only the new CA`);
    }
    log(`results:\n${results.map((r) => `${r.scenario}: ${r.acknowledged} acknowledged, ${r.lost} lost, longest gap ${r.unavailabilityS} s`).join('\n')}`);
  });
});
