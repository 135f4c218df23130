// `pgha backup`: one pgBackRest backup, run where the scheduled ones run, its progress shown live,
// and the result read back from `info` afterwards.
import { InputError, PghaError } from '../../errors.js';
import type { Session } from '../../session/session.js';
import { lastLines, pgbackrestRunner, readRepoInfo, runBackup, type BackupType } from '../../components/pgbackrest/runner.js';
import type { BackupResult } from './format.js';

/** Runs one backup and returns the new backup as `info` reports it. */
export async function takeBackup(session: Session, type: BackupType, out: (line: string) => void): Promise<BackupResult> {
  const stanza = session.inv.pgbackrest.stanza;
  const before = await readRepoInfo(session);
  if (before.code !== 0 && before.code !== 2) throw new PghaError(`stanza ${stanza} is not usable: status ${before.code} (${before.message}); run pgha apply`);
  if (type !== 'full' && !before.backups.some((b) => b.type === 'full' && !b.error)) {
    throw new InputError(`a ${type} backup needs a prior full backup, and the repository has none: run pgha backup --type=full first`);
  }
  const runner = await pgbackrestRunner(session);
  const started = Date.now();
  const r = await runBackup(session, runner, type, (l) => out(`  ${session.masker.mask(l)}`));
  const ms = Date.now() - started;
  if (r.code !== 0) {
    const why = (r.stderr.trim() || r.stdout.trim()).split('\n').filter((l) => /ERROR|WARN/.test(l)).slice(-3).join('\n') || lastLines(r);
    throw new PghaError(`backup failed on ${runner.conn.target.name} (pgBackRest exit ${r.code}):\n${session.masker.mask(why)}`);
  }
  const after = await readRepoInfo(session);
  const known = new Set(before.backups.map((b) => b.label));
  const backup = after.backups.filter((b) => !known.has(b.label)).pop();
  if (!backup) throw new PghaError('pgBackRest reported success, but info lists no new backup');
  // Retention may have expired older backups: the repository total is what is left.
  return { backup, repoTotal: after.backups.reduce((n, b) => n + b.repoSize, 0), ms };
}
