// The repository's contents as `pgha backups` shows them: pgBackRest's `info --output=json`
// with every field an operator asks about, and its status read from status.code (the exit code
// of `info` is 0 even for a broken stanza).
import type { Session } from '../cluster/session.js';
import { pgbackrestRunner } from '../cluster/pgbackrest.js';

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

export async function readRepoInfo(session: Session): Promise<RepoInfo> {
  const { conn, user } = await pgbackrestRunner(session);
  const stanza = session.inv.pgbackrest.stanza;
  const r = await conn.run(['pgbackrest', `--stanza=${stanza}`, '--output=json', 'info'], { user, timeoutMs: 60_000 });
  return parseRepoInfo(r.stdout, stanza);
}

// ---------------------------------------------------------------- formatting

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

export function formatDuration(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 && !Number.isInteger(seconds) ? 1 : 0)}s`;
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = `${String(s % 60).padStart(2, '0')}s`;
  return h ? `${h}h ${String(m).padStart(2, '0')}m ${rest}` : `${m}m ${rest}`;
}

/** Epoch seconds as `YYYY-MM-DD HH:MM:SS+00` (UTC, the form `--to` accepts back). */
export function formatEpoch(sec: number): string {
  return `${new Date(sec * 1000).toISOString().slice(0, 19).replace('T', ' ')}+00`;
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n');
}

export function formatRepoInfo(info: RepoInfo): string {
  const lines = [`stanza ${info.stanza}: ${info.message} (status code ${info.code})${info.backupRunning ? ', a backup is running' : ''}`];
  lines.push(`WAL archive: ${info.archiveMin && info.archiveMax ? `${info.archiveMin} .. ${info.archiveMax}` : 'empty'}`);
  if (!info.backups.length) {
    lines.push('no backups');
    return lines.join('\n');
  }
  const rows = [['LABEL', 'TYPE', 'START (UTC)', 'STOP (UTC)', 'DURATION', 'SIZE', 'REPO SIZE', 'WAL START', 'WAL STOP']];
  for (const b of info.backups) {
    rows.push([
      b.label + (b.error ? ' (errors)' : ''),
      b.type,
      formatEpoch(b.start).slice(0, 19),
      formatEpoch(b.stop).slice(0, 19),
      formatDuration(b.stop - b.start),
      formatBytes(b.size),
      formatBytes(b.repoSize),
      b.walStart ?? '-',
      b.walStop ?? '-',
    ]);
  }
  lines.push(table(rows));
  return lines.join('\n');
}

export function repoInfoJson(info: RepoInfo): unknown {
  return {
    stanza: info.stanza,
    status: { code: info.code, message: info.message, backupRunning: info.backupRunning },
    archive: { min: info.archiveMin ?? null, max: info.archiveMax ?? null },
    backups: info.backups.map((b) => ({
      label: b.label,
      type: b.type,
      prior: b.prior,
      start: new Date(b.start * 1000).toISOString(),
      stop: new Date(b.stop * 1000).toISOString(),
      durationSeconds: b.stop - b.start,
      size: b.size,
      repoSize: b.repoSize,
      walStart: b.walStart ?? null,
      walStop: b.walStop ?? null,
      error: b.error,
    })),
  };
}
