// The repository's contents as `pgha backups` shows them, from pgBackRest's `info` (read by
// cluster/pgbackrest.ts parseInfo): every field an operator asks about, sizes with pgBackRest's
// own meaning (database size, what the backup copied, what it stored in the repository).
import type { StanzaInfo } from '../cluster/pgbackrest.js';

export type { BackupEntry, StanzaInfo } from '../cluster/pgbackrest.js';

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

/** What every backup stored in the repository, compressed (its WAL archive not counted). */
export function storedTotal(info: StanzaInfo): number {
  // storedSetSize would count a diff's or incr's prior backups again.
  return info.backups.reduce((n, b) => n + b.storedSize, 0);
}

export function formatRepoInfo(info: StanzaInfo): string {
  const lines = [`stanza ${info.stanza}: ${info.message} (status code ${info.code})${info.backupRunning ? ', a backup is running' : ''}`];
  lines.push(`WAL archive: ${info.archiveMin && info.archiveMax ? `${info.archiveMin} .. ${info.archiveMax}` : 'empty'}`);
  if (!info.backups.length) {
    lines.push('no backups');
    return lines.join('\n');
  }
  const rows = [['LABEL', 'TYPE', 'START (UTC)', 'STOP (UTC)', 'DURATION', 'DATABASE', 'BACKUP', 'STORED', 'WAL START', 'WAL STOP']];
  for (const b of info.backups) {
    rows.push([
      b.label + (b.error ? ' (errors)' : ''),
      b.type,
      formatEpoch(b.start).slice(0, 19),
      formatEpoch(b.stop).slice(0, 19),
      formatDuration(b.stop - b.start),
      formatBytes(b.databaseSize),
      formatBytes(b.backupSize),
      formatBytes(b.storedSize),
      b.walStart ?? '-',
      b.walStop ?? '-',
    ]);
  }
  lines.push(table(rows));
  lines.push(
    'DATABASE: its size when backed up; BACKUP: what the backup copied (everything for full, the changed files for diff/incr); ' +
      `STORED: what it added to the repository, compressed (${formatBytes(storedTotal(info))} in all)`,
  );
  return lines.join('\n');
}

export function repoInfoJson(info: StanzaInfo): unknown {
  return {
    stanza: info.stanza,
    status: { code: info.code, message: info.message, backupRunning: info.backupRunning },
    archive: { min: info.archiveMin ?? null, max: info.archiveMax ?? null },
    storedTotal: storedTotal(info),
    backups: info.backups.map((b) => ({
      label: b.label,
      type: b.type,
      prior: b.prior,
      start: new Date(b.start * 1000).toISOString(),
      stop: new Date(b.stop * 1000).toISOString(),
      durationSeconds: b.stop - b.start,
      databaseSize: b.databaseSize,
      backupSize: b.backupSize,
      storedSize: b.storedSize,
      storedSetSize: b.storedSetSize,
      walStart: b.walStart ?? null,
      walStop: b.walStop ?? null,
      error: b.error,
    })),
  };
}
