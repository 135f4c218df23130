import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { parse } from 'yaml';
import { loadInventory, secretValues, type Inventory } from '../../../src/inventory/index.js';
import { renderHost } from '../../../src/components/index.js';
import { PGBACKREST_SSH_CONFIG } from '../../../src/components/pgbackrest/paths.js';
import { dcsForPatroniVersion } from '../../../src/components/patroni/version.js';
import { RELEASES } from '../../../src/components/base/release.js';
import type { Platform } from '../../../src/components/types.js';
import { maskSecrets } from '../../../src/render/mask.js';
import { renderToDir } from '../../../src/flows/render/command.js';

const SECRETS = 'test/fixtures/secrets/test-secrets.yaml';
const GOLDEN = 'test/golden/example';

/** inventories/example.yml, with the test fixture's passwords as its secrets file. */
async function example(edit: (yaml: string) => string = (y) => y): Promise<Inventory> {
  const dir = mkdtempSync(join(tmpdir(), 'pgha-render-'));
  writeFileSync(join(dir, 'example.yml'), edit(readFileSync('inventories/example.yml', 'utf8')));
  copyFileSync(SECRETS, join(dir, 'example.secrets.yml'));
  chmodSync(join(dir, 'example.secrets.yml'), 0o600);
  return loadInventory(join(dir, 'example.yml'));
}

function files(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath ?? (e as unknown as { path: string }).path, e.name)))
    .sort();
}

test('dcsForPatroniVersion: etcd (v2) below 3.0.3, etcd3 from 3.0.3', () => {
  assert.equal(dcsForPatroniVersion('3.0.2'), 'etcd');
  assert.equal(dcsForPatroniVersion('3.0.2-1'), 'etcd');
  assert.equal(dcsForPatroniVersion('2.1.4'), 'etcd');
  assert.equal(dcsForPatroniVersion('3.0.3'), 'etcd3');
  assert.equal(dcsForPatroniVersion('3.3.0'), 'etcd3');
  assert.equal(dcsForPatroniVersion('4.0.4'), 'etcd3');
  assert.throws(() => dcsForPatroniVersion('latest'));
});

test('renderHost returns only the files of the host roles', async () => {
  const inv = await example();
  const paths = (h: string) => renderHost(inv, h, { dcs: 'etcd' }).map((f) => f.path).sort();
  assert.deepEqual(paths('pg1'), [
    '/etc/apt/preferences.d/pgha.pref',
    '/etc/default/etcd',
    '/etc/haproxy/haproxy.cfg',
    '/etc/patroni/config.yml',
    '/etc/pgbackrest.conf',
    '/etc/postgresql-common/createcluster.d/pgha.conf',
    '/usr/local/lib/pgha/pgbackrest-archive-push',
    '/var/lib/postgresql/.ssh/config',
  ]);
  assert.deepEqual(paths('backup1'), [
    '/etc/apt/preferences.d/pgha.pref',
    '/etc/pgbackrest.conf',
    '/etc/systemd/system/pgha-backup-diff.service',
    '/etc/systemd/system/pgha-backup-diff.timer',
    '/etc/systemd/system/pgha-backup-full.service',
    '/etc/systemd/system/pgha-backup-full.timer',
    '/usr/local/lib/pgha/pgbackrest-record-backups',
  ]);
  const patroni = renderHost(inv, 'pg1', { dcs: 'etcd' }).find((f) => f.path === '/etc/patroni/config.yml')!;
  assert.deepEqual([patroni.owner, patroni.group, patroni.mode, patroni.secret], ['postgres', 'postgres', 0o600, true]);
  const repo = renderHost(inv, 'backup1', { dcs: 'etcd' }).find((f) => f.path === '/etc/pgbackrest.conf')!;
  assert.equal(repo.owner, 'pgbackrest');
});

test('Patroni config: listen format, pg_hba, DCS section by version, replica methods', async () => {
  const inv = await example();
  const cfg = (dcs: 'etcd' | 'etcd3') =>
    parse(renderHost(inv, 'pg2', { dcs }).find((f) => f.path === '/etc/patroni/config.yml')!.content);
  const c = cfg('etcd');
  assert.equal(c.name, 'pg2');
  assert.equal(c.scope, 'main');
  assert.equal(c.postgresql.listen, '10.0.10.12,127.0.0.1:5432');
  assert.equal(c.postgresql.connect_address, '10.0.10.12:5432');
  assert.equal(c.postgresql.data_dir, '/var/lib/postgresql/15/main');
  assert.equal(c.postgresql.bin_dir, '/usr/lib/postgresql/15/bin');
  assert.equal(c.restapi.listen, '10.0.10.12:8008');
  assert.equal(c.restapi.authentication.password, 'test-restapi-pw-4');
  assert.equal(c.postgresql.authentication.replication.password, 'test-replication-pw-2');
  assert.ok(c.etcd && !c.etcd3);
  assert.deepEqual(c.etcd.hosts, ['10.0.10.11:2379', '10.0.10.12:2379', '10.0.10.13:2379']);
  const c3 = cfg('etcd3');
  assert.ok(c3.etcd3 && !c3.etcd);
  const hba: string[] = c.postgresql.pg_hba;
  // TLS (the default): every rule pgha writes for the network is hostssl, and clear-text TCP is
  // rejected before the inventory's own rules are reached.
  assert.ok(hba.includes('hostssl replication replicator 127.0.0.1/32 scram-sha-256'));
  for (const a of ['10.0.10.11', '10.0.10.12', '10.0.10.13']) {
    assert.ok(hba.includes(`hostssl replication replicator ${a}/32 scram-sha-256`));
    assert.ok(hba.includes(`hostssl all rewind_user ${a}/32 scram-sha-256`));
  }
  assert.deepEqual(hba.filter((r) => r.startsWith('host ')), ['host all all 10.0.10.0/24 scram-sha-256'], 'only the inventory writes host rules');
  assert.ok(hba.indexOf('hostnossl all all all reject') < hba.indexOf('host all all 10.0.10.0/24 scram-sha-256'));
  assert.ok(hba.indexOf('hostnossl replication all all reject') < hba.indexOf('host all all 10.0.10.0/24 scram-sha-256'));
  assert.equal(hba.at(-1), 'host all all 10.0.10.0/24 scram-sha-256', "the inventory's rules come last");
  for (const u of ['superuser', 'replication', 'rewind']) {
    assert.equal(c.postgresql.authentication[u].sslmode, 'verify-full');
    assert.equal(c.postgresql.authentication[u].sslrootcert, '/etc/pgha/tls/ca.crt');
  }
  assert.equal(c.postgresql.parameters.ssl, 'on');
  assert.equal(c.restapi.certfile, '/etc/pgha/tls/postgres.crt');
  assert.equal(c.etcd.protocol, 'https');
  const dcs = c.bootstrap.dcs;
  assert.deepEqual([dcs.ttl, dcs.loop_wait, dcs.retry_timeout], [12, 2, 5]);
  assert.equal(dcs.postgresql.parameters.archive_mode, 'on');
  assert.equal(dcs.postgresql.parameters.archive_command, '/usr/local/lib/pgha/pgbackrest-archive-push %p');
  assert.equal(dcs.postgresql.parameters.max_connections, 200);
  assert.equal(dcs.postgresql.recovery_conf.restore_command, 'pgbackrest --stanza=main archive-get %f %p');
  assert.deepEqual(c.postgresql.create_replica_methods, ['pgbackrest', 'basebackup']);
  assert.deepEqual(c.postgresql.pgbackrest, { command: 'pgbackrest --stanza=main --delta restore', keep_data: true, no_params: true });
  assert.deepEqual(c.bootstrap.initdb, [{ encoding: 'UTF8' }, { locale: 'C.UTF-8' }, 'data-checksums']);
});

test('etcd: v2 API enabled only for the etcd DCS; data dir is not Debian default', async () => {
  const inv = await example();
  const etcd = (dcs: 'etcd' | 'etcd3') => renderHost(inv, 'pg1', { dcs }).find((f) => f.component === 'etcd')!.content;
  assert.match(etcd('etcd'), /^ETCD_ENABLE_V2="true"$/m);
  assert.doesNotMatch(etcd('etcd3'), /ETCD_ENABLE_V2/);
  assert.match(etcd('etcd'), /^ETCD_DATA_DIR="\/var\/lib\/etcd\/main"$/m);
  // TLS (the default): no clear-text listener at all, client certificates required on both ports.
  assert.match(etcd('etcd'), /^ETCD_LISTEN_CLIENT_URLS="https:\/\/10\.0\.10\.11:2379"$/m);
  assert.match(etcd('etcd'), /^ETCD_CLIENT_CERT_AUTH="true"$/m);
  assert.match(etcd('etcd'), /^ETCD_PEER_CLIENT_CERT_AUTH="true"$/m);
  assert.doesNotMatch(etcd('etcd'), /http:\/\//);
  const plain = renderHost(await example((y) => `${y}\ntls: false\n`), 'pg1', { dcs: 'etcd' }).find((f) => f.component === 'etcd')!.content;
  assert.match(plain, /^ETCD_LISTEN_CLIENT_URLS="http:\/\/10\.0\.10\.11:2379,http:\/\/127\.0\.0\.1:2379"$/m);
});

test("HAProxy: Debian's haproxy -c accepts the config, for both timing profiles and noloadbalance", async () => {
  for (const edit of [
    (y: string) => y,
    (y: string) => y.replace('timing: balanced', 'timing: fast').replace('noloadbalance: false', 'noloadbalance: true'),
  ]) {
    const inv = await example(edit);
    const cfg = renderHost(inv, 'pg1', { dcs: 'etcd' }).find((f) => f.component === 'haproxy')!.content;
    haproxyCheck(cfg);
    // The primary port: the leader lock (status 200) and a writable PostgreSQL (its role) in one check.
    assert.match(cfg, /http-check send meth GET uri \/primary\n    http-check expect rstring "\\"role\\": \?\\"\(master\|primary\)\\""\n    http-check expect status 200\n/);
    // The stats page without a password is on localhost only.
    assert.match(cfg, /^listen stats\n    mode http\n(?:    #.*\n)*    bind 127\.0\.0\.1:7000$/m);
    assert.match(cfg, /option httpchk OPTIONS \/replica\?lag=1048576/);
    assert.match(cfg, /stats socket \/run\/haproxy\/admin\.sock/);
    const { inter_ms, fastinter_ms, fall, rise } = inv.timing.haproxy;
    assert.match(cfg, new RegExp(`default-server inter ${inter_ms}ms fastinter ${fastinter_ms}ms fall ${fall} rise ${rise} on-marked-down shutdown-sessions`));
    const replicas = cfg.slice(cfg.indexOf('listen replicas'));
    assert.equal(replicas.includes('server pg3 '), !inv.host('pg3').tags.noloadbalance);
  }
});

test('pgBackRest: shared repository puts repo1-path on database hosts and timers there', async () => {
  const inv = await example((y) =>
    y.replace('  backup_repository: backup1 ', '  #').replace('type: host ', 'type: shared'),
  );
  const pg1 = renderHost(inv, 'pg1', { dcs: 'etcd' });
  const conf = pg1.find((f) => f.path === '/etc/pgbackrest.conf')!.content;
  assert.match(conf, /^repo1-path=\/var\/lib\/pgbackrest$/m);
  assert.doesNotMatch(conf, /repo1-host/);
  const svc = pg1.find((f) => f.path === '/etc/systemd/system/pgha-backup-full.service')!.content;
  assert.match(svc, /^ExecCondition=/m);
  assert.deepEqual(renderHost(inv, 'backup1', { dcs: 'etcd' }), []);
});

test('apt files appear only when asked for', async () => {
  const inv = await example((y) =>
    y.replace('apt_proxy: null', 'apt_proxy: http://10.0.10.1:3142').replace('postgresql_apt_repository: false', 'postgresql_apt_repository: true'),
  );
  const apt = renderHost(inv, 'backup1', { dcs: 'etcd' }).filter((f) => f.component === 'base');
  assert.deepEqual(apt.map((f) => f.path).sort(), ['/etc/apt/apt.conf.d/01pgha-proxy', '/etc/apt/preferences.d/pgha.pref', '/etc/apt/sources.list.d/pgdg.sources']);
  assert.match(apt.find((f) => f.path.includes('proxy'))!.content, /Acquire::http::Proxy "http:\/\/10\.0\.10\.1:3142";/);
});

test('apt pins: packages.versions becomes one stanza per package at priority 990 (installs and holds, never downgrades); none pinned, no stanza', async () => {
  const inv = await example((y) => y.replace(/^  versions: \{\}.*$/m, '  versions:\n    postgresql-15: 15.18-0+deb12u1\n    haproxy: 2.6.12-1+deb12u3'));
  const pins = renderHost(inv, 'pg1', { dcs: 'etcd' }).find((f) => f.path === '/etc/apt/preferences.d/pgha.pref')!;
  assert.ok(pins.beforePackages, 'written before any package is installed');
  assert.equal(
    pins.content.split('\n').filter((l) => !l.startsWith('#')).join('\n'),
    '\nPackage: haproxy\nPin: version 2.6.12-1+deb12u3\nPin-Priority: 990\n\nPackage: postgresql-15\nPin: version 15.18-0+deb12u1\nPin-Priority: 990\n',
  );
  const none = renderHost(await example(), 'pg1', { dcs: 'etcd' }).find((f) => f.path === '/etc/apt/preferences.d/pgha.pref')!;
  assert.doesNotMatch(none.content, /^Package:/m);
  assert.match(none.content, /^# No version is pinned\.$/m);
});

test('maskSecrets hides every password', async () => {
  const inv = await example();
  const all = inv.hosts.flatMap((h) => renderHost(inv, h.name, { dcs: 'etcd' })).map((f) => maskSecrets(f.content, inv)).join('\n');
  for (const v of secretValues(inv.secrets)) assert.ok(!all.includes(v));
  assert.match(all, /password: "\*\*\*\*\*\*\*\*"/);
});

// Golden files pin the rendered output of inventories/example.yml (secrets masked), on Debian 12
// with its Patroni 3.0.2 (test/golden/example) and on Debian 13 with its Patroni 4.0.7
// (test/golden/example-trixie), both with TLS (the default); and on Debian 12 with `tls: false`
// (test/golden/example-plain), whose files are what pgha rendered before TLS existed, except
// where a later change of pgha's own meant to reach every cluster (the archive_command wrapper's
// leader-key question): a cluster deployed by an earlier pgha is a `tls: false` cluster.
// Update deliberately with:
//   UPDATE_GOLDEN=1 node --import tsx --test test/unit/components/render.test.ts
const GOLDENS: [string, Platform, (y: string) => string][] = [
  [GOLDEN, { release: RELEASES.bookworm, patroniVersions: ['3.0.2'] }, (y) => y],
  [`${GOLDEN}-trixie`, { release: RELEASES.trixie, patroniVersions: ['4.0.7'] }, (y) => y],
  [`${GOLDEN}-plain`, { release: RELEASES.bookworm, patroniVersions: ['3.0.2'] }, (y) => `${y}\ntls: false\n`],
];
for (const [golden, platform, edit] of GOLDENS) {
  test(`golden: rendering inventories/example.yml for ${platform.release.label} matches ${golden}`, async () => {
    const inv = await example(edit);
    const out = mkdtempSync(join(tmpdir(), 'pgha-golden-'));
    await renderToDir(inv, out, { dcs: dcsForPatroniVersion(platform.patroniVersions[0]), platform });
    if (process.env.UPDATE_GOLDEN === '1') {
      for (const f of files(out)) {
        mkdirSync(dirname(join(golden, f)), { recursive: true });
        writeFileSync(join(golden, f), readFileSync(join(out, f)));
      }
    }
    assert.ok(existsSync(golden), 'no golden files: run once with UPDATE_GOLDEN=1 and review them');
    assert.deepEqual(files(out), files(golden));
    for (const f of files(out)) {
      assert.equal(readFileSync(join(out, f), 'utf8'), readFileSync(join(golden, f), 'utf8'), `${f} differs from the golden file`);
    }
  });
}

test('Debian 13: PostgreSQL 17 by default, etcd3 without the v2 API, Patroni 4 runs ttl 20 and the DCS says so', async () => {
  const inv = await example();
  const trixie: Platform = { release: RELEASES.trixie, patroniVersions: ['4.0.7-3~deb13u1'] };
  const pg1 = renderHost(inv, 'pg1', { dcs: 'etcd3', platform: trixie });
  const file = (path: string, list = pg1) => list.find((f) => f.path === path)!.content;
  const c = parse(file('/etc/patroni/config.yml'));
  assert.equal(c.postgresql.data_dir, '/var/lib/postgresql/17/main');
  assert.equal(c.postgresql.bin_dir, '/usr/lib/postgresql/17/bin');
  assert.ok(c.etcd3 && !c.etcd);
  assert.deepEqual([c.bootstrap.dcs.ttl, c.bootstrap.dcs.loop_wait, c.bootstrap.dcs.retry_timeout], [20, 2, 5]);
  assert.doesNotMatch(file('/etc/default/etcd'), /ENABLE_V2/);
  assert.match(file('/etc/postgresql-common/createcluster.d/pgha.conf'), /installing postgresql-17 must not create/);
  assert.match(file('/etc/pgbackrest.conf'), /^pg1-path=\/var\/lib\/postgresql\/17\/main$/m);
  assert.match(file('/etc/pgbackrest.conf', renderHost(inv, 'backup1', { dcs: 'etcd3', platform: trixie })), /^pg3-path=\/var\/lib\/postgresql\/17\/main$/m);
  // The same inventory on Debian 12: its PostgreSQL 15, and Patroni 3.0.2 takes ttl 12 as it is.
  const b = parse(file('/etc/patroni/config.yml', renderHost(inv, 'pg1', { dcs: 'etcd', platform: { release: RELEASES.bookworm, patroniVersions: ['3.0.2'] } })));
  assert.equal(b.postgresql.data_dir, '/var/lib/postgresql/15/main');
  assert.deepEqual([b.bootstrap.dcs.ttl, b.bootstrap.dcs.loop_wait, b.bootstrap.dcs.retry_timeout], [12, 2, 5]);
  // A major the inventory names wins.
  inv.cluster.postgres_version = 16;
  assert.equal(parse(file('/etc/patroni/config.yml', renderHost(inv, 'pg1', { dcs: 'etcd3', platform: trixie }))).postgresql.data_dir, '/var/lib/postgresql/16/main');
});

test("the PostgreSQL project's apt repository follows the release", async () => {
  const inv = await example((y) => y.replace('postgresql_apt_repository: false', 'postgresql_apt_repository: true'));
  for (const release of [RELEASES.bookworm, RELEASES.trixie]) {
    const f = renderHost(inv, 'pg1', { dcs: 'etcd3', platform: { release, patroniVersions: ['4.0.7'] } }).find((x) => x.path === '/etc/apt/sources.list.d/pgdg.sources')!;
    assert.match(f.content, new RegExp(`^Suites: ${release.name}-pgdg$`, 'm'));
  }
});

test('pgha render writes DIR/HOST/<path>, secrets masked', async () => {
  const inv = await example();
  const out = mkdtempSync(join(tmpdir(), 'pgha-cli-render-'));
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'render', '-i', inv.file, '-o', out, '--host', 'pg1'], {
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(readdirSync(out), ['pg1']);
  const cfg = readFileSync(join(out, 'pg1/etc/patroni/config.yml'), 'utf8');
  assert.ok(!cfg.includes('test-superuser-pw-1'));
  assert.match(cfg, /^etcd:$/m);
  const bad = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'render', '-i', inv.file, '-o', out, '--host', 'nope'], {
    encoding: 'utf8',
  });
  assert.equal(bad.status, 2);
});

test('pgha render --release trixie: PostgreSQL 17, Patroni 4.0.7 and its timing; a release or version that cannot work is refused (exit 2)', async () => {
  const render = (inv: Inventory, ...args: string[]) => {
    const out = mkdtempSync(join(tmpdir(), 'pgha-cli-render-'));
    return { out, ...spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'render', '-i', inv.file, '-o', out, '--host', 'pg1', ...args], { encoding: 'utf8' }) };
  };
  const inv = await example();
  const r = render(inv, '--release', 'trixie');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^8 files rendered \(Debian 13 \(trixie\), PostgreSQL 17, Patroni 4\.0\.7: DCS etcd3, secrets masked\)$/m);
  assert.match(r.stdout, /^timing balanced: ttl 20 s, loop_wait 2 s, retry_timeout 5 s \(Patroni 4\.0\.7 raises the profile's ttl 12 s/m);
  assert.match(readFileSync(join(r.out, 'pg1/etc/patroni/config.yml'), 'utf8'), /^etcd3:$/m);
  const d12 = render(inv);
  assert.match(d12.stdout, /^8 files rendered \(Debian 12 \(bookworm\), PostgreSQL 15, Patroni 3\.0\.2: DCS etcd, secrets masked\)$/m);
  assert.match(d12.stdout, /^timing balanced: ttl 12 s, loop_wait 2 s, retry_timeout 5 s; /m);

  const old = render(inv, '--release', 'bullseye');
  assert.equal(old.status, 2);
  assert.match(old.stderr, /--release "bullseye": expected one of bookworm, trixie \(or 12, 13\)/);
  // Patroni 3.0.2 would need etcd's v2 API, which Debian 13's etcd deprecates: nothing there depends on it.
  const v2 = render(inv, '--release', 'trixie', '--patroni-version', '3.0.2');
  assert.equal(v2.status, 2);
  assert.match(v2.stderr, /Patroni 3\.0\.2 needs etcd's v2 API .* Debian 13 \(trixie\)'s etcd 3\.5 deprecates it/);
  const pg15 = await example((y) => y.replace(/^  # postgres_version: .*$/m, '  postgres_version: 15'));
  const p = render(pg15, '--release', 'trixie');
  assert.equal(p.status, 2);
  assert.match(
    p.stderr,
    /cluster\.postgres_version 15: Debian 13 \(trixie\) ships PostgreSQL 17 only; leave postgres_version out \(the release's default, 17\) or set packages\.postgresql_apt_repository: true/,
  );
  assert.equal(render(pg15).status, 0, 'Debian 12 ships 15');
});

/** `pgha render`'s config for HAProxy, checked by Debian's haproxy -c; throws with its output. */
function haproxyCheck(cfg: string): void {
  const dir = mkdtempSync(join(tmpdir(), 'pgha-haproxy-'));
  // The checks' CA file must exist for haproxy -c: a throwaway CA in its place.
  const ca = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'ca.key'), '-out', join(dir, 'ca.crt'), '-subj', '/CN=test CA', '-days', '1'], { encoding: 'utf8' });
  assert.equal(ca.status, 0, ca.stderr);
  cfg = cfg.replaceAll('/etc/pgha/tls/ca.crt', join(dir, 'ca.crt'));
  writeFileSync(join(dir, 'haproxy.cfg'), cfg);
  const r = spawnSync('haproxy', ['-c', '-f', join(dir, 'haproxy.cfg')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
}

test('IPv6 addresses: bracketed in every URL and host:port, bare where ssh takes them', async () => {
  const v6 = (y: string) => y.replace(/address: 10\.0\.10\.(\d+)/g, 'address: fd00:10::$1');
  const inv = await example(v6);
  const pg1 = renderHost(inv, 'pg1', { dcs: 'etcd' });
  const file = (files: typeof pg1, path: string) => files.find((f) => f.path === path)!.content;

  const haproxy = file(pg1, '/etc/haproxy/haproxy.cfg');
  haproxyCheck(haproxy);
  for (const n of [11, 12, 13]) assert.match(haproxy, new RegExp(`^    server pg${n - 10} \\[fd00:10::${n}\\]:5432 check port 8008 check-ssl verify required ca-file \\S+ verifyhost pg${n - 10}$`, 'm'));

  const etcd = file(pg1, '/etc/default/etcd');
  assert.match(etcd, /^ETCD_LISTEN_PEER_URLS="https:\/\/\[fd00:10::11\]:2380"$/m);
  assert.match(etcd, /^ETCD_LISTEN_CLIENT_URLS="https:\/\/\[fd00:10::11\]:2379"$/m);
  assert.match(etcd, /^ETCD_ADVERTISE_CLIENT_URLS="https:\/\/\[fd00:10::11\]:2379"$/m);
  assert.match(etcd, /^ETCD_INITIAL_CLUSTER="pg1=https:\/\/\[fd00:10::11\]:2380,pg2=https:\/\/\[fd00:10::12\]:2380,pg3=https:\/\/\[fd00:10::13\]:2380"$/m);

  const c = parse(file(pg1, '/etc/patroni/config.yml'));
  assert.equal(c.restapi.listen, '[fd00:10::11]:8008');
  assert.equal(c.restapi.connect_address, '[fd00:10::11]:8008');
  // Patroni strips the brackets of each address before it sets listen_addresses.
  assert.equal(c.postgresql.listen, '[fd00:10::11],127.0.0.1:5432');
  assert.equal(c.postgresql.connect_address, '[fd00:10::11]:5432');
  assert.deepEqual(c.etcd.hosts, ['[fd00:10::11]:2379', '[fd00:10::12]:2379', '[fd00:10::13]:2379']);
  assert.ok(c.postgresql.pg_hba.includes('hostssl replication replicator fd00:10::12/128 scram-sha-256'));

  // pgBackRest runs `ssh USER@HOST`, and ssh takes no brackets: bare, and so in ssh's own config.
  assert.match(file(pg1, '/etc/pgbackrest.conf'), /^repo1-host=fd00:10::20$/m);
  assert.match(file(pg1, PGBACKREST_SSH_CONFIG), /^Host fd00:10::20$/m);
  const repo = file(renderHost(inv, 'backup1', { dcs: 'etcd' }), '/etc/pgbackrest.conf');
  assert.match(repo, /^pg1-host=fd00:10::11$/m);
  assert.match(repo, /^pg3-host=fd00:10::13$/m);
});

test('apt proxy: whatever the value, the apt.conf string cannot end early (apt-config reads one option)', async () => {
  const inv = await example();
  // Straight into the renderer, past validate (which refuses it): the escaping alone must hold.
  inv.packages.apt_proxy = 'http://10.0.0.1:3142/";APT::Update::Pre-Invoke {"touch /tmp/p";};//\nAPT::X "1";\\ ü';
  const conf = renderHost(inv, 'backup1', { dcs: 'etcd' }).find((f) => f.path === '/etc/apt/apt.conf.d/01pgha-proxy')!.content;
  const line = 'Acquire::http::Proxy "http://10.0.0.1:3142/%22;APT::Update::Pre-Invoke%20{%22touch%20/tmp/p%22;};//%0AAPT::X%20%221%22;%5C%20%C3%BC";';
  assert.equal(conf.split('\n')[1], line);
  assert.equal(conf.split('\n').length, 3, 'the header, the option, the final newline');
  const dir = mkdtempSync(join(tmpdir(), 'pgha-apt-'));
  writeFileSync(join(dir, 'proxy.conf'), conf);
  // What the file adds to apt's configuration (tree nodes aside): the proxy option, whole.
  const dump = (...args: string[]) => spawnSync('apt-config', [...args, 'dump'], { encoding: 'utf8' });
  const before = new Set(dump().stdout.split('\n'));
  const r = dump('-c', join(dir, 'proxy.conf'));
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(
    r.stdout.split('\n').filter((l) => !before.has(l) && !l.startsWith('CommandLine::') && !l.endsWith(' "";')),
    ['Acquire::http::Proxy "http://10.0.0.1:3142/%22;APT::Update::Pre-Invoke%20{%22touch%20/tmp/p%22;};//%0AAPT::X%20%221%22;%5C%20%C3%BC";'],
  );
});

test("PostgreSQL parameters: names written quoted and lowercased; pgha's own never replaced (read as Patroni's PyYAML does)", async () => {
  const inv = await example();
  // Straight into the renderer, past validate (which refuses most of these).
  inv.patroni.parameters = {
    'x: 1\n        restore_command': '/bin/sh -c evil',
    Archive_Command: '/bin/sh -c evil',
    RESTORE_COMMAND: '/bin/sh -c evil',
    Max_Connections: 300,
    'pg_stat_statements.max': 10000,
    log_line_prefix: "%m\nrestore_command = 'x'",
  };
  const text = renderHost(inv, 'pg1', { dcs: 'etcd' }).find((f) => f.path === '/etc/patroni/config.yml')!.content;
  const py = spawnSync('python3', ['-c', 'import json, sys, yaml; print(json.dumps(yaml.safe_load(sys.stdin)))'], { input: text, encoding: 'utf8' });
  const readers: [string, unknown][] = [['yaml (strict)', parse(text, { uniqueKeys: true })]];
  if (py.status === 0) readers.push(['PyYAML', JSON.parse(py.stdout)]);
  for (const [reader, c] of readers) {
    const dcs = (c as { bootstrap: { dcs: { postgresql: { parameters: Record<string, unknown>; recovery_conf: Record<string, unknown> } } } }).bootstrap.dcs;
    const params = dcs.postgresql.parameters;
    assert.equal(params.archive_command, '/usr/local/lib/pgha/pgbackrest-archive-push %p', reader);
    assert.equal(params.restore_command, undefined, reader);
    assert.equal(dcs.postgresql.recovery_conf.restore_command, 'pgbackrest --stanza=main archive-get %f %p', reader);
    assert.equal(params['x: 1\n        restore_command'], '/bin/sh -c evil', `${reader}: the whole name is one key`);
    assert.equal(params.max_connections, 300, reader);
    assert.equal(params['pg_stat_statements.max'], 10000, reader);
    assert.equal(params.log_line_prefix, "%m\nrestore_command = 'x'", `${reader}: a value keeps its line break inside one string`);
    assert.deepEqual(Object.keys(params).filter((k) => k !== k.toLowerCase()), [], reader);
  }
});
