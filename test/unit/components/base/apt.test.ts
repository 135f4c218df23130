// apt's side of pgha (src/components/base/apt.ts): Debian's version order (checked against dpkg
// itself where it is installed), the parsers of dpkg-query, apt-cache madison and apt-get -s,
// and the drift between pinned and installed versions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  compareDebianVersions,
  driftNote,
  newestVersion,
  parseInstalled,
  parseMadison,
  parseSimulatedUpgrade,
  pinDrift,
  pinStanzas,
  upstreamVersion,
} from '../../../../src/components/base/apt.js';

// [a, b, expected sign of compare(a, b)]
const ORDER: [string, string, number][] = [
  ['15.18-0+deb12u1', '15.20-0+deb12u1', -1],
  ['15.20-0+deb12u1', '15.18-0+deb12u1', 1],
  ['2.6.12-1+deb12u3', '2.6.12-1+deb12u4', -1],
  ['2.6.12-1+deb12u4', '2.6.12-1+deb12u4', 0],
  ['3.4.23-4', '3.4.23-4+b4', -1],
  ['1.0~rc1-1', '1.0-1', -1], // ~ sorts before the end
  ['1.0-1~bpo12+1', '1.0-1', -1],
  ['1:1.0-1', '2.0-1', 1], // the epoch first
  ['1.0-1', '1.0-01', 0], // leading zeros do not count
  ['1.0a-1', '1.0+-1', -1], // letters before other characters
  ['9-1', '10-1', -1], // numbers as numbers
  ['15.20-0+deb12u1', '15.20-0+deb12u10', -1],
];

test('Debian version order: epochs, ~, letters before symbols, numbers as numbers', () => {
  for (const [a, b, want] of ORDER) {
    assert.equal(compareDebianVersions(a, b), want, `${a} vs ${b}`);
    assert.equal(compareDebianVersions(b, a), want === 0 ? 0 : -want, `${b} vs ${a}`);
  }
});

test('Debian version order agrees with dpkg --compare-versions', (t) => {
  if (spawnSync('dpkg', ['--version']).status !== 0) return t.skip('no dpkg here');
  for (const [a, b] of ORDER) {
    const lt = spawnSync('dpkg', ['--compare-versions', a, 'lt', b]).status === 0;
    const eq = spawnSync('dpkg', ['--compare-versions', a, 'eq', b]).status === 0;
    assert.equal(compareDebianVersions(a, b), lt ? -1 : eq ? 0 : 1, `${a} vs ${b}`);
  }
});

test('newest of several versions; the upstream part PostgreSQL reports as server_version', () => {
  assert.equal(newestVersion(['15.18-0+deb12u1', '15.20-0+deb12u1', '15.19-0+deb12u1']), '15.20-0+deb12u1');
  assert.equal(newestVersion([]), undefined);
  assert.equal(upstreamVersion('15.20-0+deb12u1'), '15.20');
  assert.equal(upstreamVersion('1:2.6.12-1+deb12u4'), '2.6.12');
  assert.equal(upstreamVersion('3.0.2'), '3.0.2');
});

test('dpkg-query: installed packages with their source package (empty source: the package itself); others skipped', () => {
  const out = parseInstalled(
    [
      'libpq5\t15.18-0+deb12u1\tpostgresql-15\tii ',
      'postgresql-15\t15.18-0+deb12u1\t\tii ',
      'haproxy\t2.6.12-1+deb12u3\thaproxy\tii ',
      'oldpkg\t1.0\toldpkg\trc ',
      'libc6:amd64\t2.36-9+deb12u10\tglibc\tii ',
    ].join('\n'),
  );
  assert.deepEqual([...out.keys()], ['libpq5', 'postgresql-15', 'haproxy', 'libc6']);
  assert.deepEqual(out.get('libpq5'), { version: '15.18-0+deb12u1', source: 'postgresql-15' });
  assert.equal(out.get('postgresql-15')!.source, 'postgresql-15');
});

test('apt-cache madison: versions per package, source lines left out', () => {
  const out = parseMadison(
    [
      'postgresql-15 | 15.20-0+deb12u1 | http://deb.debian.org/debian-security bookworm-security/main amd64 Packages',
      'postgresql-15 | 15.18-0+deb12u1 | http://deb.debian.org/debian bookworm/main amd64 Packages',
      '   haproxy | 2.6.12-1+deb12u4 | http://deb.debian.org/debian-security bookworm-security/main amd64 Packages',
      '   haproxy | 2.6.12-1+deb12u3 | http://deb.debian.org/debian bookworm/main Sources',
    ].join('\n'),
  );
  assert.deepEqual(out.get('postgresql-15'), ['15.20-0+deb12u1', '15.18-0+deb12u1']);
  assert.deepEqual(out.get('haproxy'), ['2.6.12-1+deb12u4']);
});

test('apt-get -s upgrade: the Inst lines', () => {
  const out = parseSimulatedUpgrade(
    [
      'Reading package lists...',
      'The following packages will be upgraded:',
      '  libssl3 tzdata',
      'Inst libssl3 [3.0.15-1~deb12u1] (3.0.17-1~deb12u2 Debian-Security:12/stable-security [amd64])',
      'Inst tzdata [2024a-0+deb12u1] (2025b-0+deb12u1 Debian:12.11/stable [all])',
      'Conf libssl3 (3.0.17-1~deb12u2 Debian-Security:12/stable-security [amd64])',
    ].join('\n'),
  );
  assert.deepEqual(out, [
    { name: 'libssl3', from: '3.0.15-1~deb12u1', to: '3.0.17-1~deb12u2' },
    { name: 'tzdata', from: '2024a-0+deb12u1', to: '2025b-0+deb12u1' },
  ]);
});

test('pins: one stanza per package, by name; drift is a pinned package installed at another version', () => {
  assert.deepEqual(pinStanzas({ 'postgresql-15': '15.18-0+deb12u1', haproxy: '2.6.12-1+deb12u3' }), [
    { name: 'haproxy', version: '2.6.12-1+deb12u3', priority: 990 },
    { name: 'postgresql-15', version: '15.18-0+deb12u1', priority: 990 },
  ]);
  const pins = { 'postgresql-15': '15.18-0+deb12u1', haproxy: '2.6.12-1+deb12u3', etcd: '3.4.23-4' };
  const installed = new Map<string, string | null>([
    ['postgresql-15', '15.20-0+deb12u1'],
    ['haproxy', '2.6.12-1+deb12u3'],
    ['etcd', null],
  ]);
  assert.deepEqual(pinDrift(pins, installed), [{ name: 'postgresql-15', installed: '15.20-0+deb12u1', pinned: '15.18-0+deb12u1' }]);
  assert.equal(
    driftNote('node1', { name: 'postgresql-15', installed: '15.18-0+deb12u1', pinned: '15.20-0+deb12u1' }),
    'node1: postgresql-15 15.18-0+deb12u1 is installed, the inventory pins 15.20-0+deb12u1 (drift; apply leaves it): `pgha upgrade` moves it to the pin',
  );
  assert.match(driftNote('node1', { name: 'postgresql-15', installed: '15.20-0+deb12u1', pinned: '15.18-0+deb12u1' }), /the installed version is newer: .*pgha never downgrades/);
});
