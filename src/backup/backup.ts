// `pgha backup`: one pgBackRest backup, run where the scheduled ones run (the repository host as
// pgbackrest), with its progress shown live from pgBackRest's own log, and the result read back
// from `info` afterwards.
import { InputError, PghaError } from '../errors.js';
import type { Session } from '../cluster/session.js';
import { pgbackrestRunner, stanzaInfo } from '../cluster/pgbackrest.js';
import type { Connection } from '../ssh/index.js';
import { formatBytes, formatDuration, storedTotal, type BackupEntry } from './info.js';

export const BACKUP_TYPES = ['full', 'diff', 'incr'] as const;
export type BackupType = (typeof BACKUP_TYPES)[number];

export interface BackupResult {
  backup: BackupEntry;
  /** What all backups in the repository stored (after retention expired any). */
  storedTotal: number;
  ms: number;
}

/**
 * Prints the new INFO/WARN/ERROR lines of a pgBackRest log file while `work` runs (the log is
 * on the host; pgBackRest's console output only arrives when the command ends).
 */
export async function followLog<T>(conn: Connection, user: string, path: string, onLine: (l: string) => void, work: () => Promise<T>): Promise<T> {
  const count = await conn.run(['sh', '-c', 'if [ -f "$1" ]; then wc -l < "$1"; else echo 0; fi', 'sh', path], { user, check: false });
  let seen = Number(count.stdout.trim()) || 0;
  let done = false;
  const poll = async () => {
    const r = await conn.run(['tail', '-n', `+${seen + 1}`, path], { user, check: false, timeoutMs: 20_000 });
    if (r.code !== 0) return;
    const complete = r.stdout.slice(0, r.stdout.lastIndexOf('\n') + 1);
    const lines = complete.split('\n').slice(0, -1);
    seen += lines.length;
    for (const l of lines) {
      const m = /^\S+ \S+ P\d+ +(INFO|WARN|ERROR): (.*)$/.exec(l);
      if (m && !/^(backup|restore) command (begin|end)/.test(m[2])) onLine(`${m[1] === 'INFO' ? '' : `${m[1]}: `}${m[2]}`);
    }
  };
  const loop = (async () => {
    while (!done) {
      await new Promise((r) => setTimeout(r, 2000));
      if (!done) await poll().catch(() => {});
    }
  })();
  try {
    return await work();
  } finally {
    done = true;
    await loop;
    await poll().catch(() => {});
  }
}

/** Members whose PostgreSQL is down on purpose while a backup runs, and why (said on pgBackRest's warning). */
export interface ExpectedDown {
  hosts: string[];
  why: string;
}

/**
 * pgBackRest's "WARN: unable to check pgN: [DbConnectError] ..." in plain words: pgBackRest asks
 * every database host it knows whether it is the primary, and one did not answer. The backup is
 * taken from the primary all the same. `pgHosts`: the repository config's pg1, pg2, ... in order
 * (empty when unknown). Other lines pass unchanged.
 */
export function explainLogLine(line: string, pgHosts: string[], expected?: ExpectedDown): string {
  const m = /^WARN: unable to check pg(\d+): (.*)$/.exec(line);
  if (!m) return line;
  const host = pgHosts[Number(m[1]) - 1];
  const who = host ? `pg${m[1]} (${host})` : `pg${m[1]}`;
  if (host && expected?.hosts.includes(host)) {
    return `WARN: unable to check ${who}: expected, ${expected.why}; the backup is taken from the leader`;
  }
  return `WARN: unable to check ${who}: ${m[2]} -- pgBackRest could not reach PostgreSQL there (a replica that is down?); the backup is taken from the primary without it`;
}

/** Runs one backup and returns the new backup as `info` reports it. */
export async function takeBackup(session: Session, type: BackupType, out: (line: string) => void, expected?: ExpectedDown): Promise<BackupResult> {
  const { inv } = session;
  const stanza = inv.pgbackrest.stanza;
  const before = await stanzaInfo(session);
  if (before.code !== 0 && before.code !== 2) throw new PghaError(`stanza ${stanza} is not usable: status ${before.code} (${before.message}); run pgha apply`);
  if (type !== 'full' && !before.backups.some((b) => b.type === 'full' && !b.error)) {
    throw new InputError(`a ${type} backup needs a prior full backup, and the repository has none: run pgha backup --type=full first`);
  }
  const { conn, user } = await pgbackrestRunner(session);
  const started = Date.now();
  // The repository host's config lists every database host as pg1, pg2, ... in inventory order.
  const pgHosts = inv.repositoryHost ? inv.hostsWithRole('postgres').map((h) => h.name) : [];
  const show = (l: string) => out(`  ${session.masker.mask(explainLogLine(l, pgHosts, expected))}`);
  const r = await followLog(conn, user, `/var/log/pgbackrest/${stanza}-backup.log`, show, () =>
    conn.run(['pgbackrest', `--stanza=${stanza}`, `--type=${type}`, '--log-level-console=info', 'backup'], { user, check: false, timeoutMs: 24 * 3600_000 }),
  );
  const ms = Date.now() - started;
  if (r.code !== 0) {
    const why = (r.stderr.trim() || r.stdout.trim()).split('\n').filter((l) => /ERROR|WARN/.test(l)).slice(-3).join('\n') || `exit ${r.code}`;
    throw new PghaError(`backup failed on ${conn.target.name} (pgBackRest exit ${r.code}):\n${session.masker.mask(why)}`);
  }
  const after = await stanzaInfo(session);
  const known = new Set(before.backups.map((b) => b.label));
  const fresh = after.backups.filter((b) => !known.has(b.label));
  const backup = fresh[fresh.length - 1];
  if (!backup) throw new PghaError('pgBackRest reported success, but info lists no new backup');
  // Retention may have expired older backups: the repository total is what is left.
  return { backup, storedTotal: storedTotal(after), ms };
}

export function formatBackupResult(r: BackupResult): string {
  const b = r.backup;
  const copied = b.type === 'full' ? 'everything' : `the files changed since ${b.prior ?? 'the prior backup'}`;
  // A diff or incr restores with the backups it builds on: that whole set is what a restore reads.
  const set = b.storedSetSize !== b.storedSize ? `; restoring it reads ${formatBytes(b.storedSetSize)} with the backups it builds on` : '';
  return [
    `backup ${b.label} (${b.type}${b.prior ? `, based on ${b.prior}` : ''}) done`,
    `  database size ${formatBytes(b.databaseSize)}; backup size ${formatBytes(b.backupSize)} (${copied})`,
    `  stored in the repository: ${formatBytes(b.storedSize)} compressed${set} (all backups: ${formatBytes(r.storedTotal)})`,
    `  duration ${formatDuration(r.ms / 1000)} (pgBackRest: ${formatDuration(b.stop - b.start)}); WAL ${b.walStart ?? '?'} .. ${b.walStop ?? '?'}`,
  ].join('\n');
}
