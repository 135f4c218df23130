// How backups look to the operator: `pgha backups` (a table, or JSON) and the result of `pgha
// backup`, sizes with pgBackRest's own meaning (database size, what the backup copied, what it
// stored in the repository).
import type { BackupEntry, StanzaInfo } from '../../components/pgbackrest/info.js';
import { formatEpoch } from '../../components/pgbackrest/target.js';

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

/** `pgha backups --json`: snake_case keys like every --json of pgha; sizes in bytes, times in ISO 8601 UTC. */
export function repoInfoJson(info: StanzaInfo): unknown {
  return {
    stanza: info.stanza,
    status: { code: info.code, message: info.message, backup_running: info.backupRunning },
    archive: { min: info.archiveMin ?? null, max: info.archiveMax ?? null },
    stored_total: storedTotal(info),
    backups: info.backups.map((b) => ({
      label: b.label,
      type: b.type,
      prior: b.prior,
      start: new Date(b.start * 1000).toISOString(),
      stop: new Date(b.stop * 1000).toISOString(),
      duration_seconds: b.stop - b.start,
      database_size: b.databaseSize,
      backup_size: b.backupSize,
      stored_size: b.storedSize,
      stored_set_size: b.storedSetSize,
      wal_start: b.walStart ?? null,
      wal_stop: b.walStop ?? null,
      error: b.error,
    })),
  };
}

export interface BackupResult {
  backup: BackupEntry;
  /** What all backups in the repository stored (after retention expired any). */
  storedTotal: number;
  ms: number;
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
