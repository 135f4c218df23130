// The cluster CA and host certificates on the operator's machine: a CA made once (key 0600, never
// over existing files), CSRs made by openssl (as the hosts do) signed with the names pgha decides,
// checked by openssl itself; what a certificate's problems are for its place; and the per-host
// plan (kept, re-issued and why, attributes fixed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadInventory, type Inventory } from '../../../../src/inventory/index.js';
import { createCa, issueCertificate, loadClusterCa, promoteNextCa } from '../../../../src/components/tls/ca.js';
import { certProblems, parseCert } from '../../../../src/components/tls/inspect.js';
import { wantedNames } from '../../../../src/components/tls/names.js';
import { caPaths, SERVICE_USER, servicesOf } from '../../../../src/components/tls/paths.js';
import { planCertificate } from '../../../../src/components/tls/issue.js';
import { parseTlsFacts, type HostTls } from '../../../../src/components/tls/facts.js';
import { certificateRows, rowProblem } from '../../../../src/components/tls/report.js';
import { InputError } from '../../../../src/errors.js';

async function example(): Promise<{ inv: Inventory; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'pgha-tls-'));
  writeFileSync(join(dir, 'example.yml'), readFileSync('inventories/example.yml', 'utf8'));
  copyFileSync('test/fixtures/secrets/test-secrets.yaml', join(dir, 'example.secrets.yml'));
  chmodSync(join(dir, 'example.secrets.yml'), 0o600);
  return { inv: await loadInventory(join(dir, 'example.yml')), dir };
}

function openssl(args: string[], input?: string): string {
  const r = spawnSync('openssl', args, { encoding: 'utf8', input });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

/** A key and a CSR as a host makes them (the same openssl commands). */
function hostKeyAndCsr(dir: string, cn: string): { key: string; csr: string; pub: string } {
  const key = join(dir, `${cn}.key`);
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key]);
  return { key, csr: openssl(['req', '-new', '-key', key, '-subj', `/CN=${cn}`]), pub: openssl(['pkey', '-in', key, '-pubout']) };
}

test('the CA is made once beside the secrets file, its key 0600; a certificate from a host CSR carries the names pgha decides and openssl verifies it', async () => {
  const { inv, dir } = await example();
  const p = caPaths(inv);
  assert.equal(p.cert, join(dir, 'main.ca.crt'));
  assert.equal(p.key, join(dir, 'main.ca.key'));
  const ca = await createCa(inv, p.cert, p.key);
  assert.equal(statSync(p.key).mode & 0o777, 0o600);
  await assert.rejects(createCa(inv, p.cert, p.key), /appeared meanwhile: not replaced/);
  const again = await loadClusterCa(inv);
  assert.equal(again?.cert.fingerprint256, ca.cert.fingerprint256);

  const pg1 = inv.host('pg1');
  const { csr } = hostKeyAndCsr(dir, 'whatever-the-host-asks');
  const names = wantedNames(inv, pg1, 'postgres');
  const pem = await issueCertificate(ca, csr, names, 365);
  writeFileSync(join(dir, 'pg1.crt'), pem);
  assert.match(openssl(['verify', '-CAfile', p.cert, join(dir, 'pg1.crt')]), /: OK/);
  const text = openssl(['x509', '-noout', '-text', '-in', join(dir, 'pg1.crt')]);
  // The request's own CN is ignored: the certificate names the host, its address, localhost and every HAProxy host.
  assert.match(text, /Subject: CN ?= ?pg1/);
  assert.match(text, /DNS:localhost, DNS:pg1, DNS:pg2, DNS:pg3, IP Address:10\.0\.10\.11, IP Address:10\.0\.10\.12, IP Address:10\.0\.10\.13, IP Address:127\.0\.0\.1/);
  assert.match(text, /TLS Web Server Authentication, TLS Web Client Authentication/);
  assert.match(text, /CA:FALSE/);
  // A virtual IP is a name of every member's PostgreSQL certificate (clients connect to it).
  assert.ok(wantedNames({ ...inv, vip: { address: '10.0.10.100', prefix: 24, interface: 'eth0' } } as typeof inv, pg1, 'postgres').ip.includes('10.0.10.100'));
  assert.ok(!names.ip.includes('10.0.10.100'));
  // etcd's certificate names only the member itself.
  assert.deepEqual(wantedNames(inv, pg1, 'etcd'), { cn: 'pg1', dns: ['pg1'], ip: ['10.0.10.11'] });
  // Which services need a certificate, by role: the backup repository host has pgBackRest's (an
  // etcd client: the backup list it keeps in etcd), naming only itself; its key is pgbackrest's.
  assert.deepEqual(servicesOf(pg1), ['etcd', 'postgres']);
  const backup1 = inv.host('backup1');
  assert.deepEqual(servicesOf(backup1), ['pgbackrest']);
  assert.equal(SERVICE_USER.pgbackrest, 'pgbackrest');
  assert.deepEqual(wantedNames(inv, backup1, 'pgbackrest'), { cn: 'backup1', dns: ['backup1'], ip: [backup1.address] });
  // A tampered request is refused.
  const der = Buffer.from(csr.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  der[der.length - 1] ^= 0x01; // the signature's last byte
  const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
  await assert.rejects(issueCertificate(ca, tampered, names, 365), /signing request (has a bad signature|cannot be read)/);
});

test('a CA key readable by others, or a certificate without its key, is a clear error', async () => {
  const { inv } = await example();
  const p = caPaths(inv);
  await createCa(inv, p.cert, p.key);
  chmodSync(p.key, 0o644);
  await assert.rejects(loadClusterCa(inv), (e: unknown) => e instanceof InputError && /mode 0644, expected 0600.*chmod 600/.test(e.message));
  chmodSync(p.key, 0o600);
  spawnSync('rm', [p.key]);
  await assert.rejects(loadClusterCa(inv), (e: unknown) => e instanceof InputError && /the CA key .* is missing/.test(e.message));
});

test('certificate problems: another CA, other names, expired; a rotation promotes the new CA', async () => {
  const { inv, dir } = await example();
  const p = caPaths(inv);
  const ca = await createCa(inv, p.cert, p.key);
  const other = await createCa(inv, join(dir, 'other.crt'), join(dir, 'other.key'));
  const pg2 = inv.host('pg2');
  const { csr, pub } = hostKeyAndCsr(dir, 'pg2');
  const wanted = wantedNames(inv, pg2, 'etcd');
  const now = Date.now();
  const good = parseCert(await issueCertificate(ca, csr, wanted, 365));
  assert.ok(!('error' in good));
  assert.deepEqual(certProblems(good, { trusted: [ca.cert], wanted, now, keyPublicPem: pub }), []);
  const foreign = parseCert(await issueCertificate(other, csr, wanted, 365));
  assert.ok(!('error' in foreign));
  assert.match(certProblems(foreign, { trusted: [ca.cert], wanted, now }).join(), /^not signed by the cluster CA \(issuer: CN=pgha CA of cluster main/);
  const renamed = parseCert(await issueCertificate(ca, csr, wantedNames(inv, inv.host('pg3'), 'etcd'), 365));
  assert.ok(!('error' in renamed));
  assert.match(certProblems(renamed, { trusted: [ca.cert], wanted, now }).join(), /names CN=pg3; pg3, 10\.0\.10\.13, expected CN=pg2; pg2, 10\.0\.10\.12/);
  assert.match(certProblems(good, { trusted: [ca.cert], wanted, now: now + 400 * 86_400_000 }).join(), /^expired on /);
  const otherKey = hostKeyAndCsr(dir, 'x').pub;
  assert.match(certProblems(good, { trusted: [ca.cert], wanted, now, keyPublicPem: otherKey }).join(), /does not match the private key beside it/);

  // Rotation: the new CA's files take the cluster CA's place.
  const next = await createCa(inv, p.nextCert, p.nextKey);
  await promoteNextCa(inv);
  assert.equal((await loadClusterCa(inv))?.cert.fingerprint256, next.cert.fingerprint256);
});

/** A host's facts as the facts script prints them. */
function facts(services: Record<string, { key?: string; keyAttrs?: string; cert?: string; certAttrs?: string }>, bundle?: string): HostTls {
  let out = '';
  for (const [s, f] of Object.entries(services)) {
    out += `@@service ${s}\n`;
    out += f.key ? `@@key ${f.keyAttrs ?? `${s} ${s} 600`}\n${f.key}` : '@@nokey\n';
    out += f.cert ? `@@cert ${f.certAttrs ?? `${s} ${s} 644`}\n${f.cert}\n` : '@@nocert\n';
  }
  if (bundle) out += `@@bundle\n${bundle}`;
  return parseTlsFacts(out);
}

test('the plan per host and service: kept while good; re-issued with the reason; attributes fixed; renew makes a new key', async () => {
  const { inv, dir } = await example();
  const p = caPaths(inv);
  const ca = await createCa(inv, p.cert, p.key);
  const h = inv.host('pg1');
  const { csr, pub } = hostKeyAndCsr(dir, 'pg1');
  const cert = await issueCertificate(ca, csr, wantedNames(inv, h, 'postgres'), 365);
  const o = { trusted: [ca.cert] };
  const plan = (f: HostTls, extra: { renew?: boolean; now?: number } = {}) => planCertificate(inv, h, 'postgres', f, { ...o, ...extra });

  assert.deepEqual(plan(facts({ postgres: {} })), { newKey: true, issue: 'no key yet', keyAttrs: [], certAttrs: [] });
  assert.equal(plan(facts({ postgres: { key: pub } })).issue, 'no certificate yet');
  assert.equal(plan(facts({ postgres: { key: pub } })).newKey, false, 'a good key is kept');
  assert.deepEqual(plan(facts({ postgres: { key: pub, cert } })), { newKey: false, issue: null, keyAttrs: [], certAttrs: [] });
  // Within tls.renew_before_days (30) of its end.
  assert.match(plan(facts({ postgres: { key: pub, cert } }), { now: Date.now() + 340 * 86_400_000 }).issue ?? '', /^expires on \d{4}-\d\d-\d\d, within tls\.renew_before_days \(30\)$/);
  assert.deepEqual(plan(facts({ postgres: { key: pub, keyAttrs: 'root root 644', cert } })).keyAttrs, ['owner root -> postgres', 'group root -> postgres', 'mode 0644 -> 0600']);
  const renew = plan(facts({ postgres: { key: pub, cert } }), { renew: true });
  assert.deepEqual([renew.newKey, renew.issue], [true, 'renewal, with a new key']);
  // An unreadable key: a new one.
  assert.equal(plan(facts({ postgres: { key: 'garbage\n', cert } })).newKey, true);
});

test('status rows: each certificate with its end; a foreign CA, a wrong key mode, an end within 30 days named with the host', async () => {
  const { inv, dir } = await example();
  const p = caPaths(inv);
  const ca = await createCa(inv, p.cert, p.key);
  const other = await createCa(inv, join(dir, 'o.crt'), join(dir, 'o.key'));
  const h = inv.host('pg2');
  const { csr, pub } = hostKeyAndCsr(dir, 'pg2');
  const etcdCert = await issueCertificate(ca, csr, wantedNames(inv, h, 'etcd'), 365);
  const pgCert = await issueCertificate(other, csr, wantedNames(inv, h, 'postgres'), 365);
  const f = facts({ etcd: { key: pub, cert: etcdCert }, postgres: { key: pub, keyAttrs: 'postgres postgres 640', cert: pgCert } }, ca.certPem);
  const rows = certificateRows(inv, h, f, [ca.cert], Date.now());
  assert.deepEqual(rows.map((r) => r.service), ['ca', 'etcd', 'postgres']);
  assert.deepEqual(rows.map(rowProblem).slice(0, 2), [null, null]);
  assert.match(rowProblem(rows[2]) ?? '', /^pg2: \/etc\/pgha\/tls\/postgres\.crt: not signed by the cluster CA .*; the private key \/etc\/pgha\/tls\/postgres\.key is postgres:postgres 0640, expected postgres 0600$/);
  const late = certificateRows(inv, h, f, [ca.cert], Date.now() + 350 * 86_400_000);
  assert.match(rowProblem(late[1]) ?? '', /^pg2: \/etc\/pgha\/tls\/etcd\.crt: expires in 1[45] days \(\d{4}-\d\d-\d\d\): pgha tls renew/);
  // A host that trusts another CA only.
  const foreign = certificateRows(inv, h, facts({ etcd: { key: pub, cert: etcdCert } }, other.certPem), [ca.cert], Date.now());
  assert.match(rowProblem(foreign[0]) ?? '', /trusts a CA that is not the cluster's.*does not trust the cluster CA/);
});
