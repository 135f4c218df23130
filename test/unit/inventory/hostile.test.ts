// Hostile inventories and secrets files (test/fixtures/hostile/, one attack each) through the real
// CLI: `pgha validate` must refuse each with exit 2 and located problem lines naming the field,
// never crash, never echo a raw control character, never print a secret.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pgha, type CliResult } from '../../helpers.js';

const DIR = 'test/fixtures/hostile';
const SECRETS = 'test/fixtures/secrets';

// file -> every problem line's `FILE:LINE:COL: field`, and the gist of the first line.
// FILE is the fixture unless the problem is in a secrets file.
const cases: [file: string, where: string[], gist: RegExp][] = [
  ['param-trailing-space.yml', ['22:5: patroni.parameters["archive_command "]'], /not a PostgreSQL parameter name/],
  ['param-other-case.yml', ['22:5: patroni.parameters.Archive_Command'], /archive_command is set by pgha itself/],
  ['param-newline-key.yml', ['22:5: patroni.parameters["x: 1\\n        restore_command"]'], /not a PostgreSQL parameter name/],
  ['param-case-duplicate.yml', ['23:5: patroni.parameters.Shared_Buffers'], /the same parameter as "shared_buffers"/],
  ['param-value-newline.yml', ['22:22: patroni.parameters.log_line_prefix'], /contains a newline \(\\n\), expected a one-line value/],
  ['apt-proxy-injection.yml', ['21:14: packages.apt_proxy'], /expected a plain URL http\(s\):\/\/HOST\[:PORT\]\[\/PATH\] \(no quotes/],
  ['ssh-user-injection.yml', ['21:9: ssh.user'], /expected a user name: a-z, 0-9, _ and -/],
  ['host-ssh-user-injection.yml', ['10:13: hosts.pg2.ssh.user'], /got "\$\(touch \/tmp\/p\)", expected a user name/],
  ['calendar-backslash.yml', ['22:11: pgbackrest.schedule.full'], /contains a backslash: at the end of a unit file line it joins the next line/],
  ['calendar-newline.yml', ['22:11: pgbackrest.schedule.diff'], /contains a newline \(\\n\): a unit file value is one line/],
  ['calendar-specifier.yml', ['22:11: pgbackrest.schedule.full'], /contains %: systemd expands % specifiers/],
  ['address-any.yml', ['8:14: hosts.pg2.address'], /got "0\.0\.0\.0", the unspecified address/],
  ['address-ipv6-any.yml', ['8:14: hosts.pg2.address'], /got "::", the unspecified address/],
  ['address-localhost.yml', ['8:14: hosts.pg2.address'], /got "localhost", localhost is every host itself/],
  ['address-loopback.yml', ['8:14: hosts.pg2.address'], /got "127\.0\.0\.5", a loopback address \(127\.0\.0\.0\/8\)/],
  ['address-ipv6-loopback.yml', ['8:14: hosts.pg2.address'], /got "::1", the loopback address ::1/],
  ['address-zone-id.yml', ['8:14: hosts.pg2.address'], /got "fe80::1%eth0", an IPv6 zone id .* HAProxy cannot parse it/],
  ['alias-bomb.yml', ['22:9: x3[0]'], /alias \*b expands too many times \(nested anchors\), expected .*at most 100 alias expansions/],
  ['role-proto.yml', ['15:24: roles.postgres[2]'], /"__proto__" is not defined under hosts, expected one of: pg1, pg2, pg3, bk/],
  ['role-constructor.yml', ['15:24: roles.postgres[2]'], /"constructor" is not defined under hosts/],
  [
    'host-name-escape.yml',
    ['9:3: hosts["pg\\u001b[2J\\u001b[31m3\\r"]', '14:20: roles.etcd[2]', '15:24: roles.postgres[2]', '16:23: roles.haproxy[2]'],
    /got "pg\\x1b\[2J\\x1b\[31m3\\r", invalid host name/,
  ],
  ['cluster-name-escape.yml', ['3:9: cluster.name'], /got "t\\x1b\]0;pwned\\x07\\x00", expected letters, digits/],
  ['secrets-directory.yml', ['20:10: secrets'], /secrets file test\/fixtures\/secrets is a directory, expected a YAML file/],
  ['known-hosts-directory.yml', ['21:16: ssh.known_hosts'], /known_hosts file test\/fixtures\/hostile is a directory, expected an OpenSSH known_hosts file/],
  [
    'secrets-newline.yml',
    [`${SECRETS}/hostile-newline.yaml:2:21: superuser_password`],
    /got a string, contains a newline \(\\n\), expected printable characters only/,
  ],
  [
    'secrets-escape.yml',
    [`${SECRETS}/hostile-escape.yaml:3:23: replication_password`, `${SECRETS}/hostile-escape.yaml:4:18: rewind_password`],
    /got a string, contains an ESC character \(\\x1b\), expected printable characters only/,
  ],
  ['secrets-alias-bomb.yml', [`${SECRETS}/hostile-alias-bomb.yaml:4:8: c[0]`], /alias \*b expands too many times/],
];

// Every value of every fixture secrets file: none may ever be printed.
const SECRET_VALUES = [
  'test-superuser-pw-1', 'test-replication-pw-2', 'test-rewind-pw-3', 'test-restapi-pw-4',
  'hostile-superuser-pw', 'second line', 'hostile-replication-pw', 'replication-pw', 'hostile-rewind-pw',
  '987654321987', 'hostile-restapi-pw', 'hostile-alias-pw',
];

const results = new Map<string, CliResult>();

before(async () => {
  // git keeps no 0600 mode; pgha refuses secrets files others can read. The directory, named as
  // a secrets file by secrets-directory.yml, gets the mode a secrets file has: past that check.
  for (const f of readdirSync(SECRETS)) chmodSync(join(SECRETS, f), 0o600);
  chmodSync(SECRETS, 0o700);
  await Promise.all(cases.map(async ([file]) => results.set(file, await pgha(['validate', '-i', join(DIR, file)], { timeoutMs: 60_000 }))));
});

test('every fixture under test/fixtures/hostile is covered', () => {
  assert.deepEqual(readdirSync(DIR).sort(), cases.map(([f]) => f).sort());
});

for (const [file, where, gist] of cases) {
  test(`hostile ${file}: exit 2, located at ${where.join(' and ')}`, () => {
    const path = join(DIR, file);
    const r = results.get(file)!;
    const out = r.stdout + r.stderr;
    assert.equal(r.code, 2, out);
    assert.equal(r.stdout, '');
    assert.doesNotMatch(out, /internal error|\n {4}at /, 'no stack trace');
    for (const ch of out) {
      const c = ch.charCodeAt(0);
      assert.ok((c >= 0x20 && c !== 0x7f && !(c >= 0x80 && c <= 0x9f)) || c === 0x0a, `raw control character 0x${c.toString(16)} in:\n${out}`);
    }
    for (const secret of SECRET_VALUES) assert.ok(!out.includes(secret), `a secret value is printed:\n${out}`);

    const [head, ...lines] = r.stderr.trimEnd().split('\n');
    assert.equal(head, `pgha: ${path}: ${lines.length} problem${lines.length === 1 ? '' : 's'}`);
    for (const l of lines) assert.match(l, /^test\/fixtures\/[^:]+:\d+:\d+: /, `every problem line is located: ${l}`);
    const located = (w: string) => (w.startsWith(`${SECRETS}/`) ? w : `${path}:${w}`);
    assert.equal(lines.length, where.length, r.stderr);
    where.forEach((w, i) => assert.ok(lines[i].startsWith(`${located(w)}: `), `expected ${located(w)}: ..., got:\n${lines[i]}`));
    assert.match(lines[0], gist);
    for (const l of lines) assert.match(l, /expected/, `every message says what is expected: ${l}`);
  });
}

test('the CLI escapes control characters in every error, whatever built it (a file name, an unknown option)', async () => {
  const file = await pgha(['validate', '-i', 'no\x1b]0;title\x07such\r.yml'], { timeoutMs: 60_000 });
  assert.equal(file.code, 2);
  assert.equal(file.stderr, 'pgha: cannot read inventory no\\x1b]0;title\\x07such\\r.yml: ENOENT\n');
  const option = await pgha(['validate', '-i', 'x.yml', '--bad\x1b[2J'], { timeoutMs: 60_000 });
  assert.equal(option.code, 2);
  assert.match(option.stderr, /unknown option '--bad\\x1b\[2J'/);
  assert.doesNotMatch(file.stderr + option.stderr, /[\x00-\x09\x0b-\x1f\x7f]/);
});
