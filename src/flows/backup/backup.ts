// `pgha backup`: one pgBackRest backup, run where the scheduled ones run, its progress shown live,
// and the result read back from `info` afterwards.
import { InputError, PghaError } from '../../errors.js';
import type { Session } from '../../session/session.js';
import { lastLines, pgbackrestRunner, stanzaInfo, runBackup, type BackupType } from '../../components/pgbackrest/runner.js';
import { recordBackups } from '../../components/pgbackrest/record.js';
import { storedTotal, type BackupResult } from './format.js';

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
  const stanza = session.inv.pgbackrest.stanza;
  const before = await stanzaInfo(session);
  if (before.code !== 0 && before.code !== 2) throw new PghaError(`stanza ${stanza} is not usable: status ${before.code} (${before.message}); run pgha apply`);
  if (type !== 'full' && !before.backups.some((b) => b.type === 'full' && !b.error)) {
    throw new InputError(`a ${type} backup needs a prior full backup, and the repository has none: run pgha backup --type=full first`);
  }
  const runner = await pgbackrestRunner(session);
  const started = Date.now();
  // The repository host's config lists every database host as pg1, pg2, ... in inventory order.
  const pgHosts = session.inv.repositoryHost ? session.inv.hostsWithRole('postgres').map((h) => h.name) : [];
  const r = await runBackup(session, runner, type, (l) => out(`  ${session.masker.mask(explainLogLine(l, pgHosts, expected))}`));
  const ms = Date.now() - started;
  if (r.code !== 0) {
    const why = (r.stderr.trim() || r.stdout.trim()).split('\n').filter((l) => /ERROR|WARN/.test(l)).slice(-3).join('\n') || lastLines(r);
    throw new PghaError(`backup failed on ${runner.conn.target.name} (pgBackRest exit ${r.code}):\n${session.masker.mask(why)}`);
  }
  const after = await stanzaInfo(session);
  const known = new Set(before.backups.map((b) => b.label));
  const backup = after.backups.filter((b) => !known.has(b.label)).pop();
  if (!backup) throw new PghaError('pgBackRest reported success, but info lists no new backup');
  // The backup list outlives the repository host in etcd (what `pgha replace` names if its disk is lost).
  const recorded = await recordBackups(session).catch((err: unknown) => (err instanceof Error ? err.message : String(err)));
  if (recorded !== true) out(`  note: the backup list could not be copied into etcd: ${recorded}`);
  // Retention may have expired older backups: the repository total is what is left.
  return { backup, storedTotal: storedTotal(after), ms };
}
