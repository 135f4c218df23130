// The repository's contents: THE parser of `pgbackrest info --output=json`, whose status is read
// from status.code (the exit code of `info` is 0 even for a broken stanza: 0 ok, 1 missing stanza
// path, 2 no valid backups, 3 missing stanza data, ...).

export interface BackupEntry {
  label: string;
  type: string; // full | diff | incr
  /** The backup this one depends on (diff/incr), or null. */
  prior: string | null;
  /** Epoch seconds. */
  start: number;
  stop: number;
  size: number;
  repoSize: number;
  walStart?: string;
  walStop?: string;
  error: boolean;
}

export interface RepoInfo {
  stanza: string;
  code: number;
  message: string;
  /** A backup is running right now (pgBackRest holds its lock). */
  backupRunning: boolean;
  /** Oldest first. */
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
    info: { size: number; repository: { size: number } };
    archive?: { start?: string | null; stop?: string | null };
  }[];
  archive?: { min?: string | null; max?: string | null }[];
}

export function parseRepoInfo(json: string, stanza: string): RepoInfo {
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
        size: b.info.size,
        repoSize: b.info.repository.size,
        walStart: b.archive?.start ?? undefined,
        walStop: b.archive?.stop ?? undefined,
        error: b.error === true,
      }))
      .sort((a, b) => a.stop - b.stop),
    archiveMin: mins[0],
    archiveMax: maxs[maxs.length - 1],
  };
}
