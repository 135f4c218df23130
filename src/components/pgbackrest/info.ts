// The repository's contents: THE parser of `pgbackrest info --output=json` (apply, verify, status,
// backups all read it through here), whose status is read from status.code: the exit code of
// `info` is 0 even for a broken stanza (0 ok, 1 missing stanza path, 2 no valid backups, 3
// missing stanza data, ...).

/** One backup as `pgbackrest info` reports it, with pgBackRest's own figures. */
export interface BackupEntry {
  label: string;
  type: string; // full | diff | incr
  /** The backup this one depends on (diff/incr), or null. */
  prior: string | null;
  /** Epoch seconds. */
  start: number;
  stop: number;
  /** The database's size when it was backed up (info.size; "database size"). */
  databaseSize: number;
  /** What this backup copied: everything for a full backup, the changed files for diff/incr
   * (info.delta; pgBackRest's "database backup size", "diff backup size = ..."). */
  backupSize: number;
  /** What this backup added to the repository, compressed (info.repository.delta; "repo1: backup size"). */
  storedSize: number;
  /** This backup with the prior backups it references, compressed: what a restore of it reads
   * (info.repository.size; "repo1: backup set size"). */
  storedSetSize: number;
  walStart?: string;
  walStop?: string;
  error: boolean;
}

/** A stanza as `pgbackrest info --output=json` reports it. */
export interface StanzaInfo {
  stanza: string;
  /** status.code: 0 ok, 1 missing stanza path, 2 no valid backups, 3 missing stanza data, ... */
  code: number;
  message: string;
  /** A backup is running right now (pgBackRest holds its lock). */
  backupRunning: boolean;
  /** Oldest first (by stop time). */
  backups: BackupEntry[];
  archiveMin?: string;
  archiveMax?: string;
}

interface RawStanza {
  name: string;
  status: { code: number; message: string; lock?: { backup?: { held?: boolean } } };
  backup?: {
    label: string;
    type: string;
    prior?: string | null;
    error?: boolean;
    timestamp: { start: number; stop: number };
    info: { size: number; delta: number; repository: { size: number; delta: number } };
    archive?: { start?: string | null; stop?: string | null };
  }[];
  archive?: { min?: string | null; max?: string | null }[];
}

/**
 * `pgbackrest info --output=json` read properly: its exit code is 0 even for a broken stanza, so
 * the status is status.code. The one reader of that JSON (apply, verify, status, backups).
 */
export function parseInfo(json: string, stanza: string): StanzaInfo {
  const all = JSON.parse(json) as RawStanza[];
  const s = all.find((x) => x.name === stanza);
  if (!s) return { stanza, code: 1, message: 'missing stanza', backupRunning: false, backups: [] };
  const mins = (s.archive ?? []).map((a) => a.min).filter((x): x is string => !!x).sort();
  const maxs = (s.archive ?? []).map((a) => a.max).filter((x): x is string => !!x).sort();
  return {
    stanza,
    code: s.status.code,
    message: s.status.message,
    backupRunning: s.status.lock?.backup?.held === true,
    backups: (s.backup ?? [])
      .map((b) => ({
        label: b.label,
        type: b.type,
        prior: b.prior ?? null,
        start: b.timestamp.start,
        stop: b.timestamp.stop,
        databaseSize: b.info.size,
        backupSize: b.info.delta,
        storedSize: b.info.repository.delta,
        storedSetSize: b.info.repository.size,
        walStart: b.archive?.start ?? undefined,
        walStop: b.archive?.stop ?? undefined,
        error: b.error === true,
      }))
      .sort((a, b) => a.stop - b.stop),
    archiveMin: mins[0],
    archiveMax: maxs[maxs.length - 1],
  };
}

/** pg_stat_archiver's figures that say whether WAL archiving works now. */
export interface ArchiverStats {
  failed_count: number;
  last_failed_time: string | null;
  last_archived_time: string | null;
}

/** WAL archiving fails now: its last failure came after its last success (or there was none). */
export function archivingFails(a: ArchiverStats): boolean {
  return a.failed_count > 0 && a.last_failed_time !== null && (a.last_archived_time === null || Date.parse(a.last_failed_time) > Date.parse(a.last_archived_time));
}

/** THE archiver query (a json object), asked on the leader. */
export const ARCHIVER_SQL = `(select row_to_json(a) from (select last_archived_wal, last_archived_time, failed_count, last_failed_wal, last_failed_time from pg_stat_archiver) a)`;
