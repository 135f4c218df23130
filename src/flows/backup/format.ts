// How backups look to the operator: `pgha backups` (a table, or JSON) and the result of `pgha backup`.
import type { BackupEntry, RepoInfo } from '../../components/pgbackrest/info.js';
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

export interface BackupResult {
  backup: BackupEntry;
  repoTotal: number;
  ms: number;
}

export function formatBackupResult(r: BackupResult): string {
  const b = r.backup;
  return [
    `backup ${b.label} (${b.type}${b.prior ? `, based on ${b.prior}` : ''}) done`,
    `  size ${formatBytes(b.size)}, in the repository ${formatBytes(b.repoSize)} (all backups: ${formatBytes(r.repoTotal)})`,
    `  duration ${formatDuration(r.ms / 1000)} (pgBackRest: ${formatDuration(b.stop - b.start)}); WAL ${b.walStart ?? '?'} .. ${b.walStop ?? '?'}`,
  ].join('\n');
}
