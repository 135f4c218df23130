// Backups and restores, the pure parts: restore targets checked against the repository,
// info parsing and formatting, the DCS key removal by DCS kind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InputError } from '../../../src/errors.js';
import { readFileSync } from 'node:fs';
import { formatBytes, formatDuration, formatRepoInfo, repoInfoJson, storedTotal, formatBackupResult } from '../../../src/flows/backup/format.js';
import { parseInfo, type StanzaInfo } from '../../../src/components/pgbackrest/info.js';
import { explainLogLine } from '../../../src/flows/backup/backup.js';
import { checkTarget, formatMicros, parseTargetTime, restoreArgs, type RestoreTarget } from '../../../src/components/pgbackrest/target.js';
import { clusterKey, dcsRemoveCommand, isKeyNotFound } from '../../../src/components/patroni/actions.js';
import { readPatroniSetup } from '../../../src/components/patroni/config.js';
import { assertSnakeCase } from '../../helpers.js';

// pgBackRest 2.45's `info --output=json` shape (trimmed).
const INFO = JSON.stringify([
  {
    name: 'main',
    status: { code: 0, message: 'ok', lock: { backup: { held: false } } },
    archive: [{ id: '15-1', min: '000000010000000000000003', max: '00000002000000000000000C' }],
    backup: [
      {
        label: '20240501-100000F',
        type: 'full',
        prior: null,
        error: false,
        timestamp: { start: 1714557600, stop: 1714557612 },
        info: { size: 23_000_000, delta: 23_000_000, repository: { size: 3_000_000, delta: 3_000_000 } },
        archive: { start: '000000010000000000000003', stop: '000000010000000000000003' },
      },
      {
        label: '20240501-100000F_20240502-100000D',
        type: 'diff',
        prior: '20240501-100000F',
        error: false,
        timestamp: { start: 1714644000, stop: 1714644005 },
        info: { size: 23_100_000, delta: 200_000, repository: { size: 3_100_000, delta: 40_000 } },
        archive: { start: '000000010000000000000007', stop: '000000010000000000000007' },
      },
    ],
  },
]);
const info = parseInfo(INFO, 'main');
const at = (s: string) => parseTargetTime(s);
const time = (s: string): RestoreTarget => ({ kind: 'time', ...at(s) });
const NOW = at('2024-05-03 00:00:00+00').micros;

test('target times: PostgreSQL and ISO forms, offsets, microseconds, normalized to UTC', () => {
  assert.equal(at('2024-05-01 10:11:12.345678+00').text, '2024-05-01 10:11:12.345678+00');
  assert.equal(at('2024-05-01T10:11:12Z').text, '2024-05-01 10:11:12.000000+00');
  assert.equal(at('2024-05-01 12:11:12.5+02').text, '2024-05-01 10:11:12.500000+00');
  assert.equal(at('2024-05-01 05:41:12-04:30').text, '2024-05-01 10:11:12.000000+00');
  assert.equal(at('2024-05-01 10:11 UTC').text, '2024-05-01 10:11:00.000000+00');
  assert.equal(at('2024-05-01 10:11:12.000001+00').micros - at('2024-05-01 10:11:12+00').micros, 1);
  assert.equal(formatMicros(at('1999-12-31 23:59:59.999999+00').micros), '1999-12-31 23:59:59.999999+00');
});

test('target times: unparsable, zoneless or impossible times are bad input', () => {
  for (const bad of ['yesterday', '', '2024-05-01 10:11:12', '2024-02-30 10:00:00+00', '2024-05-01 25:00:00+00', '2024-05-01 10:11:12.1234567+00', '2024-05-01 10:11:12+99']) {
    assert.throws(() => at(bad), (e: unknown) => e instanceof InputError && e.exitCode === 2 && /cannot read the restore target/.test(e.message), bad);
  }
});

test('a target before the end of the earliest backup is refused, naming the earliest possible one', () => {
  assert.throws(
    () => checkTarget(time('2024-05-01 10:00:05+00'), info, NOW),
    (e: unknown) =>
      e instanceof InputError &&
      /before the end of the earliest backup \(20240501-100000F, finished 2024-05-01 10:00:12\+00\)/.test(e.message) &&
      /no consistent backup/.test(e.message) &&
      /earliest possible target is 2024-05-01 10:00:13\.000000\+00/.test(e.message),
  );
  // The stop time is whole seconds: the same second is not yet safe.
  assert.throws(() => checkTarget(time('2024-05-01 10:00:12.9+00'), info, NOW), InputError);
  assert.equal(checkTarget(time('2024-05-01 10:00:13+00'), info, NOW).backup.label, '20240501-100000F');
});

test('a target in the future is refused; otherwise the newest backup ended before it is used', () => {
  assert.throws(() => checkTarget(time('2024-05-03 00:00:01+00'), info, NOW), (e: unknown) => e instanceof InputError && /in the future/.test(e.message));
  assert.equal(checkTarget(time('2024-05-02 09:00:00+00'), info, NOW).backup.label, '20240501-100000F');
  assert.equal(checkTarget(time('2024-05-02 12:00:00+00'), info, NOW).backup.label, '20240501-100000F_20240502-100000D');
});

test('restore to a backup: the label must exist; a broken or empty stanza refuses any target', () => {
  assert.equal(checkTarget({ kind: 'backup', label: '20240501-100000F' }, info, NOW).backup.type, 'full');
  assert.throws(() => checkTarget({ kind: 'backup', label: 'nope' }, info, NOW), /no backup labelled nope/);
  const broken: StanzaInfo = { ...info, code: 3, message: 'missing stanza data' };
  assert.throws(() => checkTarget(time('2024-05-02 12:00:00+00'), broken, NOW), /status 3 \(missing stanza data\)/);
  const empty: StanzaInfo = { ...info, code: 2, message: 'no valid backups', backups: [] };
  assert.throws(() => checkTarget(time('2024-05-02 12:00:00+00'), empty, NOW), /no valid backups/);
});

test('pgBackRest restore arguments: point in time with promotion, or one backup set to its end', () => {
  const t = checkTarget(time('2024-05-02 12:00:00+00'), info, NOW);
  assert.deepEqual(restoreArgs('main', t), [
    'pgbackrest', '--stanza=main', '--delta', '--set=20240501-100000F_20240502-100000D', '--target-action=promote',
    '--type=time', '--target=2024-05-02 12:00:00.000000+00', 'restore',
  ]);
  const b = checkTarget({ kind: 'backup', label: '20240501-100000F' }, info, NOW);
  assert.deepEqual(restoreArgs('main', b), ['pgbackrest', '--stanza=main', '--delta', '--set=20240501-100000F', '--target-action=promote', '--type=immediate', 'restore']);
});

test('info: every field, status from status.code, archive range; a missing stanza is code 1', () => {
  assert.equal(info.code, 0);
  assert.equal(info.backups.length, 2);
  assert.deepEqual(info.backups[1], {
    label: '20240501-100000F_20240502-100000D', type: 'diff', prior: '20240501-100000F', start: 1714644000, stop: 1714644005,
    databaseSize: 23_100_000, backupSize: 200_000, storedSize: 40_000, storedSetSize: 3_100_000, walStart: '000000010000000000000007', walStop: '000000010000000000000007', error: false,
  });
  assert.equal(info.archiveMin, '000000010000000000000003');
  assert.equal(info.archiveMax, '00000002000000000000000C');
  assert.equal(parseInfo(INFO, 'other').code, 1);
  const broken = parseInfo(JSON.stringify([{ name: 'main', status: { code: 2, message: 'no valid backups' }, backup: [], archive: [] }]), 'main');
  assert.deepEqual([broken.code, broken.message, broken.backups.length, broken.archiveMax], [2, 'no valid backups', 0, undefined]);
});

// Captured from the lab: `pgbackrest --stanza=main --output=json info` (pgBackRest 2.45) after the
// first full backup, a second full one and a diff on top of it.
const REAL = parseInfo(readFileSync(new URL('../../fixtures/pgbackrest/info-full-full-diff.json', import.meta.url), 'utf8'), 'main');

test("info: pgBackRest's own figures: database size, what the backup copied, what it stored (real JSON)", () => {
  assert.deepEqual(
    REAL.backups.map((b) => [b.label, b.type, b.databaseSize, b.backupSize, b.storedSize, b.storedSetSize]),
    [
      ['20261201-024956F', 'full', 23_265_057, 23_265_057, 3_084_867, 3_084_867],
      ['20261201-025510F', 'full', 43_835_169, 43_835_169, 11_314_208, 11_314_208],
      // pgBackRest's text: "database size: 43.8MB, database backup size: 22.1MB; repo1: backup set size: 11.6MB, backup size: 8.7MB"
      ['20261201-025510F_20261201-025521D', 'diff', 45_907_745, 23_216_394, 9_091_356, 12_135_696],
    ],
  );
  assert.equal(REAL.backups[2].prior, '20261201-025510F');
  assert.deepEqual([REAL.code, REAL.message, REAL.backupRunning, REAL.archiveMin, REAL.archiveMax], [0, 'ok', false, '000000010000000000000007', '00000001000000000000000D']);
  // The set sizes would count the full backup under the diff twice.
  assert.equal(storedTotal(REAL), 3_084_867 + 11_314_208 + 9_091_356);
});

test('pgha backup result: the diff backup\'s own size, not the database\'s', () => {
  const diff = REAL.backups[2];
  assert.equal(
    formatBackupResult({ backup: diff, storedTotal: storedTotal(REAL), ms: 6100 }),
    [
      'backup 20261201-025510F_20261201-025521D (diff, based on 20261201-025510F) done',
      '  database size 43.8 MiB; backup size 22.1 MiB (the files changed since 20261201-025510F)',
      '  stored in the repository: 8.7 MiB compressed; restoring it reads 11.6 MiB with the backups it builds on (all backups: 22.4 MiB)',
      '  duration 6.1s (pgBackRest: 2s); WAL 00000001000000000000000D .. 00000001000000000000000D',
    ].join('\n'),
  );
  const full = formatBackupResult({ backup: REAL.backups[1], storedTotal: 14_399_075, ms: 8100 }).split('\n');
  assert.equal(full[1], '  database size 41.8 MiB; backup size 41.8 MiB (everything)');
  assert.equal(full[2], '  stored in the repository: 10.8 MiB compressed (all backups: 13.7 MiB)');
});

test('pgha backups: table with the three sizes explained, and JSON in bytes', () => {
  const text = formatRepoInfo(REAL);
  assert.match(text, /^stanza main: ok \(status code 0\)$/m);
  assert.match(text, /^WAL archive: 000000010000000000000007 \.\. 00000001000000000000000D$/m);
  assert.match(text, /^LABEL +TYPE +START \(UTC\) +STOP \(UTC\) +DURATION +DATABASE +BACKUP +STORED +WAL START +WAL STOP$/m);
  assert.match(text, /^20261201-025510F +full +2026-12-01 02:55:10 +2026-12-01 02:55:15 +5s +41\.8 MiB +41\.8 MiB +10\.8 MiB +00000001000000000000000B +00000001000000000000000B$/m);
  assert.match(text, /^20261201-025510F_20261201-025521D +diff +2026-12-01 02:55:21 +2026-12-01 02:55:23 +2s +43\.8 MiB +22\.1 MiB +8\.7 MiB +00000001000000000000000D/m);
  assert.match(
    text,
    /^DATABASE: its size when backed up; BACKUP: what the backup copied \(everything for full, the changed files for diff\/incr\); STORED: what it added to the repository, compressed \(22\.4 MiB in all\)$/m,
  );
  const json = repoInfoJson(REAL) as { status: { code: number }; stored_total: number; backups: Record<string, unknown>[] };
  assert.equal(json.status.code, 0);
  assert.equal(json.stored_total, 23_490_431);
  assertSnakeCase(json);
  assert.deepEqual(json.backups[2], {
    label: '20261201-025510F_20261201-025521D',
    type: 'diff',
    prior: '20261201-025510F',
    start: '2026-12-01T02:55:21.000Z',
    stop: '2026-12-01T02:55:23.000Z',
    duration_seconds: 2,
    database_size: 45_907_745,
    backup_size: 23_216_394,
    stored_size: 9_091_356,
    stored_set_size: 12_135_696,
    wal_start: '00000001000000000000000D',
    wal_stop: '00000001000000000000000D',
    error: false,
  });
  assert.equal(formatBytes(512), '512 B');
  assert.equal(formatBytes(1536), '1.5 KiB');
  assert.equal(formatDuration(4.25), '4.3s');
  assert.equal(formatDuration(125), '2m 05s');
  assert.equal(formatDuration(3725), '1h 02m 05s');
});

test("pgBackRest's 'unable to check pgN' warning in plain words: expected during a restore, explained otherwise", () => {
  // As pgBackRest 2.45 logs it during the restore's full backup, while node2 and node3 are stopped.
  const raw =
    "WARN: unable to check pg2: [DbConnectError] raised from remote-0 ssh protocol on '10.88.223.12': unable to connect to " +
    "'dbname='postgres' port=5432 user='postgres' host='/var/run/postgresql'': connection to server on socket \"/var/run/postgresql/.s.PGSQL.5432\" failed: No such file or directory";
  const pg = ['node1', 'node2', 'node3'];
  const expected = { hosts: ['node2', 'node3'], why: 'its PostgreSQL stays stopped until it is rebuilt from this backup (the next step)' };
  assert.equal(
    explainLogLine(raw, pg, expected),
    'WARN: unable to check pg2 (node2): expected, its PostgreSQL stays stopped until it is rebuilt from this backup (the next step); the backup is taken from the leader',
  );
  // Not expected (pgha backup with a replica down): pgBackRest's reason stays, with what it means.
  assert.equal(
    explainLogLine(raw, pg),
    `WARN: unable to check pg2 (node2): ${raw.slice('WARN: unable to check pg2: '.length)} -- pgBackRest could not reach PostgreSQL there (a replica that is down?); the backup is taken from the primary without it`,
  );
  assert.match(explainLogLine(raw.replace('pg2', 'pg7'), pg, expected), /^WARN: unable to check pg7: \[DbConnectError\] .* -- pgBackRest could not reach/);
  assert.equal(explainLogLine('new backup label = 20261201-025755F', pg, expected), 'new backup label = 20261201-025755F');
});

test('DCS: the rendered Patroni config names the DCS kind, scope, namespace and directories', () => {
  const cfg = (dcs: string) =>
    `scope: "lab"\nnamespace: "/service/"\nname: "node1"\n${dcs}:\n  protocol: http\n  hosts:\n  - "10.0.0.1:2379"\npostgresql:\n  data_dir: "/var/lib/postgresql/15/main"\n  bin_dir: "/usr/lib/postgresql/15/bin"\n`;
  assert.deepEqual(readPatroniSetup(cfg('etcd')), { dcs: 'etcd', scope: 'lab', namespace: '/service/', dataDir: '/var/lib/postgresql/15/main', binDir: '/usr/lib/postgresql/15/bin' });
  assert.equal(readPatroniSetup(cfg('etcd3')).dcs, 'etcd3');
  assert.throws(() => readPatroniSetup(cfg('consul')), /neither an etcd: nor an etcd3:/);
});

test('DCS key removal: v2 rm --recursive for etcd:, v3 del --prefix (with a trailing slash) for etcd3:; one member\'s key alone', () => {
  const eps = ['http://10.0.0.1:2379', 'http://10.0.0.2:2379'];
  assert.deepEqual(dcsRemoveCommand({ dcs: 'etcd', namespace: '/service/', scope: 'lab' }, eps), [
    'env', 'ETCDCTL_API=2', 'etcdctl', '--endpoints=http://10.0.0.1:2379,http://10.0.0.2:2379', 'rm', '--recursive', '/service/lab',
  ]);
  assert.deepEqual(dcsRemoveCommand({ dcs: 'etcd3', namespace: '/service/', scope: 'lab' }, eps), [
    'env', 'ETCDCTL_API=3', 'etcdctl', '--endpoints=http://10.0.0.1:2379,http://10.0.0.2:2379', 'del', '--prefix', '/service/lab/',
  ]);
  // A member that left: its key alone, never the prefix (node1 must not take node10 with it).
  assert.deepEqual(dcsRemoveCommand({ dcs: 'etcd', namespace: '/service/', scope: 'lab' }, eps, undefined, 'node1'), [
    'env', 'ETCDCTL_API=2', 'etcdctl', '--endpoints=http://10.0.0.1:2379,http://10.0.0.2:2379', 'rm', '/service/lab/members/node1',
  ]);
  assert.deepEqual(dcsRemoveCommand({ dcs: 'etcd3', namespace: '/service/', scope: 'lab' }, eps, { v2: [], v3: ['--cacert=/ca'] }, 'node1'), [
    'env', 'ETCDCTL_API=3', 'etcdctl', '--endpoints=http://10.0.0.1:2379,http://10.0.0.2:2379', '--cacert=/ca', 'del', '/service/lab/members/node1',
  ]);
  assert.equal(clusterKey('/pg/clusters/', 'x'), '/pg/clusters/x');
  assert.equal(clusterKey('/', 'x'), '/x');
  assert.ok(isKeyNotFound('Error:  100: Key not found (/service/lab) [12]'));
  assert.ok(!isKeyNotFound('Error: client: etcd cluster is unavailable'));
});
