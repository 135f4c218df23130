// Backups and restores, the pure parts: restore targets checked against the repository,
// info parsing and formatting, the DCS key removal by DCS kind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InputError } from '../../../src/errors.js';
import { formatBytes, formatDuration, formatRepoInfo, repoInfoJson } from '../../../src/flows/backup/format.js';
import { parseRepoInfo, type RepoInfo } from '../../../src/components/pgbackrest/info.js';
import { checkTarget, formatMicros, parseTargetTime, restoreArgs, type RestoreTarget } from '../../../src/components/pgbackrest/target.js';
import { clusterKey, dcsRemoveCommand, isKeyNotFound } from '../../../src/components/patroni/actions.js';
import { readPatroniSetup } from '../../../src/components/patroni/config.js';

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
const info = parseRepoInfo(INFO, 'main');
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
  const broken: RepoInfo = { ...info, code: 3, message: 'missing stanza data' };
  assert.throws(() => checkTarget(time('2024-05-02 12:00:00+00'), broken, NOW), /status 3 \(missing stanza data\)/);
  const empty: RepoInfo = { ...info, code: 2, message: 'no valid backups', backups: [] };
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
    size: 23_100_000, repoSize: 3_100_000, walStart: '000000010000000000000007', walStop: '000000010000000000000007', error: false,
  });
  assert.equal(info.archiveMin, '000000010000000000000003');
  assert.equal(info.archiveMax, '00000002000000000000000C');
  assert.equal(parseRepoInfo(INFO, 'other').code, 1);
  const broken = parseRepoInfo(JSON.stringify([{ name: 'main', status: { code: 2, message: 'no valid backups' }, backup: [], archive: [] }]), 'main');
  assert.deepEqual([broken.code, broken.message, broken.backups.length, broken.archiveMax], [2, 'no valid backups', 0, undefined]);
});

test('info formatting: table and JSON', () => {
  const text = formatRepoInfo(info);
  assert.match(text, /^stanza main: ok \(status code 0\)$/m);
  assert.match(text, /^WAL archive: 000000010000000000000003 \.\. 00000002000000000000000C$/m);
  assert.match(text, /^LABEL +TYPE +START \(UTC\) +STOP \(UTC\) +DURATION +SIZE +REPO SIZE +WAL START +WAL STOP$/m);
  assert.match(text, /^20240501-100000F +full +2024-05-01 10:00:00 +2024-05-01 10:00:12 +12s +21\.9 MiB +2\.9 MiB +000000010000000000000003/m);
  const json = repoInfoJson(info) as { status: { code: number }; backups: { label: string; stop: string; durationSeconds: number }[] };
  assert.equal(json.status.code, 0);
  assert.deepEqual(json.backups.map((b) => b.label), ['20240501-100000F', '20240501-100000F_20240502-100000D']);
  assert.equal(json.backups[0].stop, '2024-05-01T10:00:12.000Z');
  assert.equal(json.backups[0].durationSeconds, 12);
  assert.equal(formatBytes(512), '512 B');
  assert.equal(formatBytes(1536), '1.5 KiB');
  assert.equal(formatDuration(4.25), '4.3s');
  assert.equal(formatDuration(125), '2m 05s');
  assert.equal(formatDuration(3725), '1h 02m 05s');
});

test('DCS: the rendered Patroni config names the DCS kind, scope, namespace and directories', () => {
  const cfg = (dcs: string) =>
    `scope: "lab"\nnamespace: "/service/"\nname: "node1"\n${dcs}:\n  protocol: http\n  hosts:\n  - "10.0.0.1:2379"\npostgresql:\n  data_dir: "/var/lib/postgresql/15/main"\n  bin_dir: "/usr/lib/postgresql/15/bin"\n`;
  assert.deepEqual(readPatroniSetup(cfg('etcd')), { dcs: 'etcd', scope: 'lab', namespace: '/service/', dataDir: '/var/lib/postgresql/15/main', binDir: '/usr/lib/postgresql/15/bin' });
  assert.equal(readPatroniSetup(cfg('etcd3')).dcs, 'etcd3');
  assert.throws(() => readPatroniSetup(cfg('consul')), /neither an etcd: nor an etcd3:/);
});

test('DCS key removal: v2 rm --recursive for etcd:, v3 del --prefix (with a trailing slash) for etcd3:', () => {
  const eps = ['http://10.0.0.1:2379', 'http://10.0.0.2:2379'];
  assert.deepEqual(dcsRemoveCommand({ dcs: 'etcd', namespace: '/service/', scope: 'lab' }, eps), [
    'env', 'ETCDCTL_API=2', 'etcdctl', '--endpoints=http://10.0.0.1:2379,http://10.0.0.2:2379', 'rm', '--recursive', '/service/lab',
  ]);
  assert.deepEqual(dcsRemoveCommand({ dcs: 'etcd3', namespace: '/service/', scope: 'lab' }, eps), [
    'env', 'ETCDCTL_API=3', 'etcdctl', '--endpoints=http://10.0.0.1:2379,http://10.0.0.2:2379', 'del', '--prefix', '/service/lab/',
  ]);
  assert.equal(clusterKey('/pg/clusters/', 'x'), '/pg/clusters/x');
  assert.equal(clusterKey('/', 'x'), '/x');
  assert.ok(isKeyNotFound('Error:  100: Key not found (/service/lab) [12]'));
  assert.ok(!isKeyNotFound('Error: client: etcd cluster is unavailable'));
});
