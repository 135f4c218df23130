// Backups and restores on the lab's real cluster: pgha backup / backups, a restore target that
// is refused without touching anything, a point-in-time restore drill (rows written before the
// target come back, rows after it do not, on every member), and backups plus WAL archiving
// after a switchover; the archive_command wrapper's question to etcd (who holds the leader key).
// Leaves a verified cluster behind.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import * as lab from '../lab/lab.js';
import { ensureCluster, pgha } from '../helpers.js';
import { assertArchiveCommandAsksLeaderKey, archiveNow, DB, leader, members, psql, sh, sleep, verified as verifiedOn } from './lab-cluster.js';
import { formatBytes } from '../../src/flows/backup/format.js';

let inventory: string;
const timings: string[] = [];
async function postmasterStarts(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const h of DB) out[h] = await psql(h, 'select pg_postmaster_start_time()');
  return out;
}

interface BackupJson {
  label: string;
  type: string;
  start: string;
  stop: string;
  database_size: number;
  backup_size: number;
}
async function backupsJson(): Promise<{ status: { code: number }; backups: BackupJson[] }> {
  const r = await pgha(['backups', '-i', inventory, '--json']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  return JSON.parse(r.stdout);
}

const verified = () => verifiedOn(inventory);

describe('backups and restores on the lab', { timeout: 60 * 60_000 }, () => {
  before(async () => {
    inventory = await ensureCluster();
  });
  after(() => {
    process.stdout.write(`# measured on the lab:\n${timings.map((t) => `#   ${t}\n`).join('')}`);
  });

  test('--help explains each command', async () => {
    for (const cmd of ['backup', 'backups', 'restore']) {
      const r = await pgha([cmd, '--help']);
      assert.equal(r.code, 0);
      assert.match(r.stdout, new RegExp(`Usage: pgha ${cmd} `));
    }
    assert.match((await pgha(['restore', '--help'])).stdout, /DESTRUCTIVE/);
  });

  test('pgha backup prints the new backup; pgha backups lists it as the newest', async () => {
    const bad = await pgha(['backup', '-i', inventory, '--type=weekly']);
    assert.equal(bad.code, 2, bad.stdout + bad.stderr);
    const r = await pgha(['backup', '-i', inventory]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    timings.push(`full backup (pgha backup, small database): ${(r.ms / 1000).toFixed(1)}s`);
    const m = /^backup (\d{8}-\d{6}F) \(full\) done$/m.exec(r.stdout);
    assert.ok(m, r.stdout);
    assert.match(r.stdout, /^ {2}database size [\d.]+ (B|KiB|MiB|GiB); backup size [\d.]+ (B|KiB|MiB|GiB) \(everything\)$/m);
    assert.match(r.stdout, /^ {2}stored in the repository: [\d.]+ (B|KiB|MiB|GiB) compressed \(all backups: [\d.]+ (B|KiB|MiB|GiB)\)$/m);
    assert.match(r.stdout, /^ {2}duration /m);
    assert.match(r.stdout, /new backup label = /); // pgBackRest's own progress, shown live
    const info = await backupsJson();
    assert.equal(info.status.code, 0);
    assert.equal(info.backups[info.backups.length - 1].label, m[1]);
    const table = await pgha(['backups', '-i', inventory]);
    assert.equal(table.code, 0, table.stdout + table.stderr);
    assert.match(table.stdout, /^stanza main: ok \(status code 0\)$/m);
    assert.match(table.stdout, new RegExp(`^${m[1]} +full `, 'm'));
  });

  test('a restore target before the first backup, in the future, unparsable or unconfirmed is refused; nothing is touched', async () => {
    const leaderBefore = await leader();
    const startsBefore = await postmasterStarts();
    const earliest = (await backupsJson()).backups[0];
    const cases: [string[], RegExp][] = [
      [['--to', earliest.start, '--yes'], /before the end of the earliest backup .*no consistent backup to restore from/],
      [['--to', new Date(Date.now() + 86_400_000).toISOString(), '--yes'], /is in the future/],
      [['--to', 'last tuesday', '--yes'], /cannot read the restore target/],
      [['--to', new Date(Date.now() - 1000).toISOString()], /confirm with --yes/],
      [['--backup', 'no-such-label', '--yes'], /no backup labelled no-such-label/],
      [['--yes'], /exactly one of --to TIME and --backup LABEL/],
    ];
    for (const [args, why] of cases) {
      const r = await pgha(['restore', '-i', inventory, ...args]);
      assert.equal(r.code, 2, `${args.join(' ')}:\n${r.stdout}${r.stderr}`);
      assert.match(r.stderr, why);
      assert.doesNotMatch(r.stdout, /==> stop/);
    }
    assert.equal(await leader(), leaderBefore);
    assert.deepEqual(await postmasterStarts(), startsBefore);
    await verified();
  });

  test('drill: restore to a point in time brings back rows A and not rows B, on every member', async () => {
    const L = await leader();
    const tlBefore = (await members()).find((m) => m.name === L)!.timeline!;
    await psql(L, "drop table if exists drill; create table drill (id int primary key, phase text); insert into drill select g, 'A' from generate_series(1, 100) g");
    await archiveNow(L);
    const T = await psql(L, 'select now()');
    await sleep(1500);
    await psql(L, "insert into drill select g, 'B' from generate_series(101, 200) g");
    await archiveNow(L);

    const r = await pgha(['restore', '-i', inventory, '--to', T, '--yes']);
    timings.push(`restore of the whole cluster to a point in time (incl. a full backup): ${(r.ms / 1000).toFixed(1)}s`);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^==> stop Patroni and PostgreSQL on every member/m);
    assert.match(r.stdout, /^==> remove the cluster's state from the DCS \(etcd v2 store, \/service\/lab\)/m);
    assert.match(r.stdout, /promoted on timeline \d+/);
    // The full backup while the other members are stopped: pgBackRest warns it cannot check them,
    // and each such line says that is expected (no bare "unable to check pgN" line).
    const checks = r.stdout.split('\n').filter((l) => /unable to check pg\d/.test(l));
    assert.ok(checks.length >= 1, r.stdout);
    for (const l of checks) {
      assert.match(l, /^ {4}WARN: unable to check pg\d \(node\d\): expected, its PostgreSQL stays stopped until it is rebuilt from this backup \(the next step\); the backup is taken from the leader$/, l);
    }
    assert.match(r.stdout, /^ok +patroni: leader node\d; 2 replica\(s\) streaming/m);
    assert.doesNotMatch(r.stdout, /FAILED/);
    for (const line of r.stdout.split('\n').filter((l) => /^ +\d+\.\ds {2}/.test(l))) timings.push(`  restore step ${line.trim()}`);

    const ms = await members();
    const leaders = ms.filter((m) => m.role === 'leader');
    assert.equal(leaders.length, 1, JSON.stringify(ms));
    assert.ok(leaders[0].timeline! > tlBefore, `timeline ${leaders[0].timeline} after ${tlBefore}`);
    for (const m of ms.filter((x) => x.role !== 'leader')) assert.match(m.state, /^(running|streaming)$/, JSON.stringify(m));
    const nl = leaders[0].name;
    // Replicas replay asynchronously: wait until each has what the leader has.
    const lsn = await psql(nl, 'select pg_current_wal_lsn()');
    for (const h of DB) {
      if (h !== nl) {
        for (let i = 0; i < 30 && (await psql(h, `select pg_last_wal_replay_lsn() >= '${lsn}'`)) !== 't'; i++) await sleep(1000);
      }
      assert.equal(await psql(h, "select count(*) filter (where phase = 'A') || '|' || count(*) filter (where phase = 'B') from drill"), '100|0', h);
    }
    await verified();
    const diff = await pgha(['backup', '-i', inventory, '--type=diff']);
    assert.equal(diff.code, 0, diff.stdout + diff.stderr);
    const label = /^backup (\S+D) \(diff, based on \S+F\) done$/m.exec(diff.stdout)?.[1];
    assert.ok(label, diff.stdout);
    // The diff's own size, as pgBackRest reports it ("diff backup size = 2.2MB"), not the database's.
    const entry = (await backupsJson()).backups.find((b) => b.label === label)!;
    assert.ok(entry.backup_size < entry.database_size, JSON.stringify(entry));
    const theirs = /diff backup size = ([\d.]+)(B|KB|MB|GB)/.exec(diff.stdout);
    assert.ok(theirs, diff.stdout);
    const unit = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 }[theirs[2] as 'B'];
    assert.ok(Math.abs(Number(theirs[1]) * unit - entry.backup_size) <= 0.06 * unit, `pgBackRest ${theirs[0]}, pgha ${entry.backup_size} bytes`);
    const ours = /^ {2}database size ([\d.]+ \S+); backup size ([\d.]+ \S+) \(the files changed since \S+F\)$/m.exec(diff.stdout);
    assert.ok(ours, diff.stdout);
    assert.deepEqual([ours[1], ours[2]], [formatBytes(entry.database_size), formatBytes(entry.backup_size)]);
  });

  test('after a switchover, backups work and WAL archiving continues from the new leader', async () => {
    const old = await leader();
    const candidate = DB.find((h) => h !== old)!;
    const secrets = parse(readFileSync(lab.labConfig().secretsPath, 'utf8')) as { restapi_password: string };
    const body = JSON.stringify({ leader: old, candidate });
    const sw = await sh(
      old,
      `curl -sS --max-time 60 -K - -X POST -H 'Content-Type: application/json' --data-binary '${body}' -w '\\n%{http_code}' --cacert /etc/pgha/tls/ca.crt https://${lab.machineAddress(old)}:8008/switchover`,
      `user = "patroni:${secrets.restapi_password}"\n`,
    );
    assert.match(sw, /\n200$/, sw);
    for (let i = 0; i < 60 && (await leader().catch(() => '')) !== candidate; i++) await sleep(1000);
    assert.equal(await leader(), candidate);
    await verified();

    const b = await pgha(['backup', '-i', inventory, '--type=incr']);
    assert.equal(b.code, 0, b.stdout + b.stderr);
    assert.match(b.stdout, /^backup \S+I \(incr, based on \S+\) done$/m);

    const before = await psql(candidate, "select coalesce(last_archived_wal, '') from pg_stat_archiver");
    await psql(candidate, 'create table if not exists drill2 (x int); insert into drill2 values (1)');
    const seg = await archiveNow(candidate);
    const afterWal = await psql(candidate, 'select last_archived_wal from pg_stat_archiver');
    assert.ok(afterWal > before && afterWal >= seg, `${before} -> ${afterWal}`);
    await sh('node4', 'sudo -u pgbackrest pgbackrest --stanza=main check');
    await verified();
  });

  test("verify: pgBackRest checks the leader alone, the repository host's link to each replica is tried too; one broken fails verify naming it", async () => {
    const l = await leader();
    const other = DB.find((h) => h !== l)!;
    const keys = '/var/lib/postgresql/.ssh/authorized_keys';
    await sh(other, `sudo mv ${keys} ${keys}.away`);
    try {
      const v = await pgha(['verify', '-i', inventory]);
      assert.equal(v.code, 1, v.stdout + v.stderr);
      const addr = lab.machineAddress(other).replace(/\./g, '\\.');
      assert.match(v.stdout, new RegExp(`^FAILED pgbackrest \\(node4\\): check failed: node4 cannot reach ${other} as pgBackRest does \\(ssh postgres@${addr}\\): .*Permission denied`, 'm'), v.stdout);
    } finally {
      await sh(other, `sudo mv ${keys}.away ${keys}`);
    }
    const ok = await pgha(['verify', '-i', inventory]);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /^ok +pgbackrest \(node4\): stanza main ok/m);
  });

  test('archive_command asks etcd who holds the leader key: a whole segment goes from the leader; from a replica it is "not archived yet"', async () => {
    await assertArchiveCommandAsksLeaderKey();
  });
});
