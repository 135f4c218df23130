import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addressProblem, aptProxyProblem, canonicalAddress, loadInventory } from '../../../src/inventory/index.js';
import { PARAMETER_NAME_RE } from '../../../src/inventory/schema.js';
import { schemaText } from '../../../src/flows/validate/command.js';
import { InputError } from '../../../src/errors.js';

const DIR = 'test/fixtures/inventories';
const SECRETS = 'test/fixtures/secrets/test-secrets.yaml';

/** FILE:LINE:COL: field of a problem line. */
const where_ = (line: string) => line.split(': ').slice(0, 2).join(': ');

/** The problem lines of loading `file`, or [] when it is valid. */
async function problems(file: string, secrets = false): Promise<string[]> {
  try {
    await loadInventory(file, { secrets });
    return [];
  } catch (err) {
    assert.ok(err instanceof InputError, String(err));
    return err.lines;
  }
}

// Each malformed inventory: the exact FILE:LINE:COL: field of every problem, and the gist of the first.
const corpus: [file: string, where: string[], gist: RegExp][] = [
  ['yaml-tab.yml', ['7:1: (document)', '10:1: address'], /tab in the indentation/],
  ['yaml-duplicate-key.yml', ['3:3: cluster.name'], /duplicate key/],
  ['yaml-unclosed-quote.yml', ['19:1: hosts.pg3.address'], /unclosed quote/],
  ['yaml-list-in-map.yml', ['19:1: haproxy.primary_port'], /list item where a map key belongs/],
  ['yaml-bad-indent.yml', ['10:1: hosts.pg3.address'], /bad indentation/],
  ['yaml-unclosed-flow.yml', ['14:3: roles.etcd[2]'], /unclosed \[/],
  ['unknown-key-typo.yml', ['19:1: timng'], /unknown key, did you mean "timing"/],
  ['unknown-nested-key.yml', ['20:3: patroni.restapi_prot'], /did you mean "restapi_port"/],
  ['unknown-host-key.yml', ['6:3: hosts.pg2.address', '7:5: hosts.pg2.adress'], /required key missing/],
  ['wrong-type-port.yml', ['20:16: etcd.client_port'], /got "abc", expected a number/],
  ['bad-port.yml', ['18:17: haproxy.primary_port'], /got 70000, expected at most 65535/],
  ['bad-port-zero.yml', ['20:17: patroni.restapi_port'], /got 0, expected at least 1/],
  ['wrong-type-bool.yml', ['20:21: patroni.synchronous_mode'], /expected true or false/],
  ['bad-timing-profile.yml', ['19:9: timing'], /expected one of: safe, balanced, fast/],
  ['missing-cluster.yml', ['1:1: cluster'], /required key missing, expected a map/],
  ['missing-cluster-name.yml', ['1:1: cluster.name'], /required key missing/],
  ['hosts-as-list.yml', ['4:3: hosts'], /got a list, expected a map/],
  ['bad-address.yml', ['7:14: hosts.pg2.address'], /not a valid address/],
  ['duplicate-address.yml', ['9:14: hosts.pg3.address'], /also the address of pg1/],
  ['bad-host-name.yml', ['10:3: hosts.Backup_1'], /invalid host name/],
  ['bad-cluster-name.yml', ['2:9: cluster.name'], /got "my cluster"/],
  ['even-etcd.yml', ['13:9: roles.etcd'], /4 members, expected an odd number/],
  ['single-etcd.yml', ['13:9: roles.etcd'], /allow_single_member/],
  ['undefined-role-member.yml', ['14:24: roles.postgres[2]'], /"pg4" is not defined under hosts/],
  ['role-member-twice.yml', ['15:23: roles.haproxy[2]'], /listed twice/],
  ['empty-role.yml', ['15:12: roles.haproxy'], /at least 1 entry/],
  ['missing-backup-repository.yml', ['12:1: roles.backup_repository'], /required key missing/],
  ['backup-repository-undefined.yml', ['16:22: roles.backup_repository'], /"bk2" is not defined/],
  ['backup-repository-is-postgres.yml', ['16:22: roles.backup_repository'], /is a postgres host/],
  ['shared-with-backup-repository.yml', ['16:22: roles.backup_repository'], /type shared, expected it removed/],
  ['port-collision.yml', ['19:15: haproxy.stats_port'], /port 5432 is also patroni.postgres_port on pg1/],
  ['port-collision-ssh.yml', ['20:16: etcd.client_port'], /port 22 is also ssh.port/],
  ['sync-single-postgres.yml', ['20:21: patroni.synchronous_mode'], /at least 2 postgres hosts/],
  ['bad-timing-override.yml', ['21:8: patroni.ttl'], /loop_wait \+ 2\*retry_timeout <= ttl/],
  ['managed-parameter.yml', ['21:5: patroni.parameters.archive_command'], /set by pgha itself/],
  ['all-nofailover.yml', ['17:13: roles.postgres'], /every postgres host is tagged nofailover/],
  ['bad-apt-proxy.yml', ['20:14: packages.apt_proxy'], /got "ftp:\/\/10.1.0.254:3142", expected a plain URL http\(s\):\/\/HOST/],
  ['maxconn-too-big.yml', ['19:12: haproxy.maxconn'], /at most 8000/],
  ['bad-parameter-name.yml', ['22:5: patroni.parameters["max connections"]'], /got "max connections", not a PostgreSQL parameter name/],
  ['bad-ssh-user.yml', ['20:9: ssh.user'], /got "Admin", expected a user name/],
  ['bad-calendar.yml', ['21:11: pgbackrest.schedule.full'], /got "Sun 25:00", not a calendar expression systemd accepts/],
  ['duplicate-address-ipv6.yml', ['9:14: hosts.pg3.address'], /"fd00:0:0::01" is also the address of pg1/],
  ['bad-package-versions.yml', ['19:20: packages.versions.postgresql-15', '20:5: packages.versions.HAProxy', '21:14: packages.versions.patroni'], /got "15\.18 -0\+deb12u1", not a Debian version, expected \[EPOCH:\]UPSTREAM\[-REVISION\]/],
];

for (const [file, where, gist] of corpus) {
  test(`malformed inventory ${file} is reported at ${where.join(' and ')}`, async () => {
    const path = join(DIR, file);
    const lines = await problems(path);
    assert.deepEqual(
      lines.map(where_),
      where.map((w) => `${path}:${w}`),
      lines.join('\n'),
    );
    assert.match(lines[0], gist);
    for (const l of lines) assert.match(l, /expected/, `every message says what is expected: ${l}`);
  });
}

test('the corpus holds at least 30 malformed inventories', () => {
  assert.ok(corpus.length >= 30);
});

test('the valid fixture and inventories/example.yml load, with defaults applied', async () => {
  assert.deepEqual(await problems(join(DIR, 'valid.yml')), []);
  const inv = await loadInventory('inventories/example.yml', { secrets: false });
  assert.equal(inv.cluster.name, 'main');
  assert.deepEqual(inv.hostsWithRole('etcd').map((h) => h.name), ['pg1', 'pg2', 'pg3']);
  assert.deepEqual([...inv.host('backup1').roles], ['backup_repository']);
  assert.equal(inv.repositoryHost?.name, 'backup1');
  assert.equal(inv.timing.profile, 'balanced');
  assert.deepEqual(inv.timing.patroni, { ttl: 12, loop_wait: 2, retry_timeout: 5 });
  assert.deepEqual(inv.timing.haproxy, { inter_ms: 2000, fastinter_ms: 500, fall: 3, rise: 1 });
  assert.equal(inv.patroni.users.replication, 'replicator');
  assert.equal(inv.host('pg1').ssh.knownHosts, join(process.cwd(), 'inventories/known_hosts'));
  assert.ok(inv.host('pg1').ssh.privateKey!.startsWith('/') && !inv.host('pg1').ssh.privateKey!.includes('~'));
});

test('timing profiles set Patroni and HAProxy timings together; balanced is the default; overrides obey the rule', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgha-inv-'));
  const base = readFileSync(join(DIR, 'valid.yml'), 'utf8');
  assert.doesNotMatch(base, /^timing:/m);
  const load = async (name: string, extra: string) => {
    writeFileSync(join(dir, name), `${base}${extra}`);
    return loadInventory(join(dir, name), { secrets: false });
  };
  const def = await load('default.yml', '');
  assert.equal(def.timing.profile, 'balanced');
  assert.deepEqual(def.timing.patroni, { ttl: 12, loop_wait: 2, retry_timeout: 5 });
  const safe = await load('safe.yml', 'timing: safe\n');
  assert.deepEqual(safe.timing.patroni, { ttl: 30, loop_wait: 10, retry_timeout: 10 }, "Patroni's own defaults");
  assert.deepEqual(safe.timing.haproxy, { inter_ms: 2000, fastinter_ms: 500, fall: 3, rise: 1 });
  const fast = await load('fast.yml', 'timing: fast\n');
  assert.deepEqual(fast.timing.patroni, { ttl: 7, loop_wait: 1, retry_timeout: 3 });
  assert.deepEqual(fast.timing.haproxy, { inter_ms: 1000, fastinter_ms: 250, fall: 2, rise: 1 });
  // Every profile obeys Patroni's rule.
  for (const p of [def, safe, fast]) assert.ok(p.timing.patroni.loop_wait + 2 * p.timing.patroni.retry_timeout <= p.timing.patroni.ttl);
  const o = await load('override.yml', 'patroni:\n  ttl: 40\n  retry_timeout: 15\n');
  assert.deepEqual(o.timing.patroni, { ttl: 40, loop_wait: 2, retry_timeout: 15 });
});

test('legitimate values pass the hardened checks: IPv6, names, extension parameters, proxy with a user, zones', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgha-inv-'));
  const base = readFileSync(join(DIR, 'valid.yml'), 'utf8').replace('address: 10.1.0.1', 'address: fd00::1').replace('address: 10.1.0.2', 'address: db2.example.com');
  writeFileSync(
    join(dir, 'inv.yml'),
    `${base}ssh:\n  user: deploy_1\n  known_hosts: known_hosts\n` +
      'patroni:\n  parameters:\n    Shared_Buffers: 1GB\n    pg_stat_statements.max: 10000\n    log_line_prefix: "%m [%p] "\n' +
      'packages:\n  apt_proxy: "http://user:pa%40ss@[fd00::9]:3128/apt/"\n' +
      'pgbackrest:\n  schedule:\n    full: Mon..Fri 02:30 Europe/Berlin\n    diff: "*-*-1/2 03:00 UTC"\n',
  );
  writeFileSync(join(dir, 'known_hosts'), '');
  const inv = await loadInventory(join(dir, 'inv.yml'), { secrets: false });
  assert.equal(inv.host('pg1').address, 'fd00::1');
  assert.equal(inv.host('pg1').ssh.user, 'deploy_1');
  assert.deepEqual(inv.patroni.parameters, { Shared_Buffers: '1GB', 'pg_stat_statements.max': 10000, log_line_prefix: '%m [%p] ' });
  assert.equal(inv.pgbackrest.schedule.full, 'Mon..Fri 02:30 Europe/Berlin');
});

test('every problem at once: a file with 3 problems gives 3 lines', async () => {
  const lines = await problems(join(DIR, 'three-problems.yml'));
  assert.equal(lines.length, 3, lines.join('\n'));
  assert.match(lines[0], /:13:9: roles\.etcd: /);
  assert.match(lines[1], /:18:17: haproxy\.primary_port: /);
  assert.match(lines[2], /:19:1: timng: /);
});

function withSecrets(content: string | null, mode = 0o600): string {
  const dir = mkdtempSync(join(tmpdir(), 'pgha-secrets-'));
  const inv = join(dir, 'inv.yml');
  writeFileSync(inv, `${readFileSync(join(DIR, 'valid.yml'), 'utf8')}secrets: s.yml\n`);
  if (content !== null) {
    writeFileSync(join(dir, 's.yml'), content);
    chmodSync(join(dir, 's.yml'), mode);
  }
  return inv;
}
const goodSecrets = () => readFileSync(SECRETS, 'utf8');

test('secrets: loaded when mode 0600', async () => {
  const inv = await loadInventory(withSecrets(goodSecrets()));
  assert.equal(inv.secrets?.replication_password, 'test-replication-pw-2');
});

test('secrets: a file readable by others is refused, naming the file, its mode and the fix', async () => {
  const file = withSecrets(goodSecrets(), 0o644);
  const lines = await problems(file, true);
  const secrets = join(file, '..', 's.yml');
  assert.equal(lines.length, 1);
  assert.equal(where_(lines[0]), `${file}:19:10: secrets`);
  assert.ok(lines[0].includes(`${secrets} has mode 0644`), lines[0]);
  assert.ok(lines[0].includes(`chmod 600 ${secrets}`), lines[0]);
});

test('secrets: a missing file is reported at the secrets key', async () => {
  const file = withSecrets(null);
  const lines = await problems(file, true);
  assert.equal(lines.length, 1);
  assert.match(lines[0], /:19:10: secrets: secrets file .*s\.yml not found/);
});

test('secrets: unknown and missing keys are located; values never printed', async () => {
  const text = goodSecrets().replace('rewind_password', 'rewind_pasword').replace('test-restapi-pw-4', 'short');
  const lines = await problems(withSecrets(text), true);
  assert.equal(lines.length, 3, lines.join('\n'));
  assert.match(lines.join('\n'), /s\.yml:\d+:\d+: rewind_password: required key missing/);
  assert.match(lines.join('\n'), /s\.yml:\d+:\d+: rewind_pasword: unknown key, did you mean "rewind_password"/);
  assert.match(lines.join('\n'), /s\.yml:5:19: restapi_password: got a string, expected at least 8 characters/);
  for (const l of lines) assert.ok(!l.includes('short') && !l.includes('test-'), l);
});

test('schema/inventory.schema.json is up to date (regenerate: pgha schema > schema/inventory.schema.json)', () => {
  assert.equal(readFileSync('schema/inventory.schema.json', 'utf8'), schemaText());
});

function cli(...args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { encoding: 'utf8' });
}

test('pgha validate: exit 2 with every problem on stderr', () => {
  const r = cli('validate', '-i', join(DIR, 'three-problems.yml'));
  assert.equal(r.status, 2, r.stderr);
  assert.equal(r.stderr.split('\n').filter((l) => l.startsWith(join(DIR, 'three-problems.yml:'))).length, 3, r.stderr);
});

test('pgha validate: FILE: ok and exit 0', () => {
  const file = withSecrets(goodSecrets());
  const r = cli('validate', '-i', file);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^${file.replace(/[.]/g, '\\.')}: ok`));
});

test('pgha schema prints the committed JSON Schema', () => {
  const r = cli('schema');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, readFileSync('schema/inventory.schema.json', 'utf8'));
});

test('addresses: what the other hosts can reach passes; anything meaning "this host" or "no host" says why', () => {
  for (const a of ['10.0.0.1', '192.168.1.20', 'fd00::1', '2001:db8::1', '::ffff:10.0.0.1', 'db1.example.com', 'db1']) {
    assert.equal(addressProblem(a), null, a);
  }
  const refused: [string, RegExp][] = [
    ['0.0.0.0', /the unspecified address/],
    ['::', /the unspecified address/],
    ['0.1.2.3', /0\.0\.0\.0\/8 is "this network"/],
    ['127.0.0.1', /a loopback address \(127\.0\.0\.0\/8\)/],
    ['127.255.0.5', /a loopback address/],
    ['::ffff:127.0.0.1', /a loopback address/],
    ['::1', /the loopback address ::1/],
    ['0:0:0:0:0:0:0:1', /the loopback address ::1/],
    ['localhost', /localhost is every host itself/],
    ['LocalHost', /localhost is every host itself/],
    ['db.localhost', /localhost is every host itself/],
    ['224.0.0.1', /a multicast address/],
    ['ff02::1', /a multicast address \(ff00::\/8\)/],
    ['255.255.255.255', /the broadcast address/],
    ['fe80::1', /a link-local address \(fe80::\/10\) is only reachable with a zone id/],
    ['fe80::13%eth0', /an IPv6 zone id .* HAProxy cannot parse it/],
    ['10.0.0.300', /^not a valid address/],
    ['db_1.example', /^not a valid address/],
  ];
  for (const [a, why] of refused) {
    assert.match(addressProblem(a) ?? 'accepted', why, a);
    assert.match(addressProblem(a)!, /expected .*(IPv4 or IPv6 address or a host name)/, a);
  }
  assert.equal(canonicalAddress('FD00:0:0::01'), canonicalAddress('fd00::1'));
  assert.notEqual(canonicalAddress('fd00::1'), canonicalAddress('fd00::2'));
});

test('apt proxy: a plain http(s) URL passes; anything apt.conf or a shell could read as syntax is refused', () => {
  for (const u of ['http://10.0.10.1:3142', 'https://proxy.example.com/', 'http://[fd00::9]:3128/apt/', 'http://user:pa%40ss@proxy:8080', 'http://proxy']) {
    assert.equal(aptProxyProblem(u), null, u);
  }
  for (const u of [
    'http://10.0.0.1:3142/";APT::Update::Pre-Invoke {"touch /tmp/p";};//',
    'http://10.0.0.1:3142/ x',
    "http://10.0.0.1:3142/'",
    'http://10.0.0.1:3142/a;b',
    'http://10.0.0.1:3142/\\',
    'http://10.0.0.1:3142/{x}',
    'http://10.0.0.1:3142/\n',
    'http://us"er@10.0.0.1/',
    'http://10.0.0.1:3142/?q=1',
    'ftp://10.0.0.1/',
    'http://[fe80::1%eth0]:3142/',
    'http://10.0.0.1:99999/',
    'http://1.2.3.999/',
  ]) {
    assert.match(aptProxyProblem(u) ?? 'accepted', /expected a plain URL http\(s\):\/\/HOST\[:PORT\]\[\/PATH\]/, JSON.stringify(u));
  }
});

test("parameter names: PostgreSQL's syntax (an identifier, or two joined by a dot)", () => {
  for (const n of ['max_connections', 'shared_buffers', 'pg_stat_statements.max', 'auto_explain.log_min_duration', '_x', 'Work_Mem']) {
    assert.ok(PARAMETER_NAME_RE.test(n), n);
  }
  for (const n of ['archive_command ', ' x', 'x: 1\n  restore_command', 'a.b.c', '1abc', 'a-b', 'a..b', '.a', 'a.', "a'b", 'ümlaut', '']) {
    assert.ok(!PARAMETER_NAME_RE.test(n), JSON.stringify(n));
  }
});
