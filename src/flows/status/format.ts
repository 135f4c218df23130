// `pgha status` as text: aligned columns; with colours (a terminal, or FORCE_COLOR; never with
// NO_COLOR: see CommandContext.color) the verdict and bad states are coloured, by kleur.
import * as kleur from 'kleur/colors';
import type { StatusReport, Verdict } from './model.js';
import { diskCell, diskProblem } from '../../components/patroni/disk.js';

const ANSI = { bold: kleur.bold, red: kleur.red, green: kleur.green, yellow: kleur.yellow };

function formatAge(seconds: number): string {
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  if (seconds < 172_800) return `${Math.floor(seconds / 3600)}h${Math.round((seconds % 3600) / 60)}m`;
  return `${Math.floor(seconds / 86_400)}d${Math.floor((seconds % 86_400) / 3600)}h`;
}

/** Rows as columns padded to the widest cell (color codes do not count). */
function table(rows: string[][]): string[] {
  const visible = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '').length;
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => visible(r[i] ?? ''))));
  return rows.map((r) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c + ' '.repeat(widths[i] - visible(c))))
      .join('  ')
      .trimEnd(),
  );
}

export function formatStatus(r: StatusReport, opts: { color?: boolean; elapsedMs?: number } = {}): string {
  // kleur's switch is global; the caller decided (formatting is synchronous, so it is restored at once).
  const before = kleur.$.enabled;
  kleur.$.enabled = opts.color === true;
  try {
    return formatStatusText(r, opts);
  } finally {
    kleur.$.enabled = before;
  }
}

function formatStatusText(r: StatusReport, opts: { color?: boolean; elapsedMs?: number }): string {
  const c = (code: keyof typeof ANSI, s: string) => ANSI[code](s);
  const verdictColor: Record<Verdict, keyof typeof ANSI> = { healthy: 'green', degraded: 'yellow', down: 'red' };
  const head = (s: string) => c('bold', s);
  const out: string[] = [];
  const took = opts.elapsedMs !== undefined ? ` in ${(opts.elapsedMs / 1000).toFixed(2)}s` : '';
  out.push(`cluster ${r.cluster}: ${c(verdictColor[r.verdict], r.verdict.toUpperCase())}  (leader ${r.leader ?? 'none'}; checked ${r.checked_at}${took})`);
  if (r.timing) out.push(r.timing.summary);
  if (r.paused) out.push(c('yellow', 'paused: maintenance mode, Patroni does not fail over'));
  if (r.scheduled_switchover) out.push(`scheduled switchover at ${r.scheduled_switchover.at}${r.scheduled_switchover.to ? ` to ${r.scheduled_switchover.to}` : ''}`);
  for (const h of r.hosts.filter((x) => !x.reachable)) out.push(c('red', `UNREACHABLE ${h.name} (${h.address}): ${h.error}`));

  out.push('');
  const good = (s: string) => s === 'running' || s === 'streaming';
  out.push(
    ...table([
      ['MEMBER', 'HOST', 'ROLE', 'STATE', 'TL', 'LAG', 'DISK', 'RESTART', 'TAGS'].map(head),
      ...r.members.map((m) => [
        m.name,
        m.host ?? '-',
        m.role?.replace('_', ' ') ?? '-',
        (good(m.state) ? m.state : c('red', m.state)) + (m.patroni_state && m.patroni_state !== m.state ? ` (${m.patroni_state})` : ''),
        m.timeline?.toString() ?? '-',
        m.lag_bytes === null ? (m.role === null ? '-' : 'unknown') : String(m.lag_bytes),
        m.data_disk ? (diskProblem(m.name, m.data_disk, null, false) ? c('red', diskCell(m.data_disk)) : diskCell(m.data_disk)) : '-',
        m.pending_restart ? c('yellow', 'pending') : '',
        Object.entries(m.tags)
          .filter(([, v]) => v !== false)
          .map(([k, v]) => (v === true ? k : `${k}=${JSON.stringify(v)}`))
          .join(','),
      ]),
    ]),
  );

  out.push('');
  out.push(
    ...table([
      ['ETCD', 'HEALTH', 'LEADER'].map(head),
      ...r.etcd.map((m) => [m.name, m.healthy ? 'healthy' : c('red', `unhealthy${m.error ? ` (${m.error})` : ''}`), m.leader ? 'leader' : '']),
    ]),
  );

  out.push('');
  out.push(
    ...table([
      ['HAPROXY', 'PRIMARY (up)', 'REPLICAS (up)'].map(head),
      ...r.haproxy.map((h) =>
        h.error ? [h.name, c('red', h.error), ''] : [h.name, h.primary.join(',') || c('red', 'none'), h.replicas.join(',') || c('yellow', 'none')],
      ),
    ]),
  );

  out.push('');
  const b = r.backups;
  const ref = (x: typeof b.last_full) => (x ? `${x.label}  ${x.time}  (${formatAge(x.age_seconds)} ago)` : 'none');
  out.push(`${head('BACKUPS')} stanza ${b.stanza}: ${b.error ? c('red', b.error) : b.status ? (b.status.code === 0 ? 'ok' : c('yellow', `${b.status.message} (${b.status.code})`)) : '?'}`);
  if (!b.error) {
    out.push(`  last full  ${ref(b.last_full)}`);
    out.push(`  last diff  ${ref(b.last_diff)}`);
    if (b.last_incr) out.push(`  last incr  ${ref(b.last_incr)}`);
  }
  const a = b.archiving;
  out.push(
    a
      ? `  WAL archiving on the leader: last archived ${a.last_archived_wal ?? 'none yet'}${a.last_archived_time ? ` at ${a.last_archived_time}` : ''}; ` +
          (a.failing ? c('red', `FAILING: ${a.failed_count} failures, last ${a.last_failed_wal} at ${a.last_failed_time}`) : `${a.failed_count} failures${a.last_failed_time ? ` (last at ${a.last_failed_time})` : ''}`)
      : '  WAL archiving on the leader: unknown',
  );
  if (b.repository_wal_max) out.push(`  newest WAL in the repository: ${b.repository_wal_max}`);

  if (r.tls.enabled) {
    out.push('');
    const rows = r.tls.certificates.map((x) => {
      const problem = x.problems.length ? c('red', x.problems.join('; ')) : x.days_left !== null && x.days_left < 30 ? c('yellow', `expires in ${x.days_left} days`) : '';
      return [x.host, x.service, x.subject ?? '-', x.not_after?.slice(0, 10) ?? '-', x.days_left === null ? '-' : `${x.days_left}d`, problem];
    });
    for (const e of r.tls.errors) rows.push([e.host, '-', '-', '-', '-', c('red', e.error)]);
    out.push(...table([['CERTIFICATE', 'OF', 'SUBJECT', 'NOT AFTER', 'LEFT', ''].map(head), ...rows]));
  }
  for (const w of r.warnings) out.push('', c('yellow', `WARNING: ${w}`));

  if (r.reasons.length) {
    out.push('');
    out.push(head(r.verdict === 'down' ? 'DOWN because:' : 'DEGRADED because:'));
    for (const reason of r.reasons) out.push(`  - ${reason}`);
  }
  return `${out.join('\n')}\n`;
}
