// What a Prometheus server needs to watch a pgha cluster (monitoring: true): the endpoints and
// their ports, a scrape configuration and an alert rules file, written by `pgha prometheus` for
// the operator to load. Pure: from the inventory only.
import { stringify } from 'yaml';
import type { Inventory } from '../../inventory/index.js';
import { hostPort } from '../../session/remote.js';
import { tlsOn } from '../tls/paths.js';

/** Ports of the exporters pgha installs (HAProxy's: its own documentation's example port). */
export const EXPORTER_PORTS = { haproxy: 8405, postgres: 9187, node: 9100, etcd: 2381 } as const;

/** The least-privilege role postgres_exporter logs in as (member of pg_monitor, peer login only). */
export const MONITOR_ROLE = 'pgha_monitor';

// Alert thresholds that fit the default schedule (weekly full, daily diff backups).
const BACKUP_MAX_AGE_H = 26;
const FULL_BACKUP_MAX_AGE_H = 8 * 24;

export interface ScrapeTarget {
  job: string;
  targets: string[];
  path?: string;
  /** https: the endpoint presents a certificate of the cluster CA (Patroni's REST API with TLS). */
  scheme: 'http' | 'https';
}

/** Every endpoint, by job. */
export function scrapeTargets(inv: Inventory): ScrapeTarget[] {
  const at = (role: 'postgres' | 'etcd' | 'haproxy', port: number) => inv.hostsWithRole(role).map((h) => hostPort(h.address, port));
  return [
    { job: 'pgha-patroni', targets: at('postgres', inv.patroni.restapi_port), scheme: tlsOn(inv) ? 'https' : 'http' },
    // etcd's metrics listener of its own (its client port asks every client for a certificate with TLS).
    { job: 'pgha-etcd', targets: at('etcd', EXPORTER_PORTS.etcd), scheme: 'http' },
    { job: 'pgha-haproxy', targets: at('haproxy', EXPORTER_PORTS.haproxy), scheme: 'http' },
    { job: 'pgha-postgres', targets: at('postgres', EXPORTER_PORTS.postgres), scheme: 'http' },
    { job: 'pgha-node', targets: inv.hosts.map((h) => hostPort(h.address, EXPORTER_PORTS.node)), scheme: 'http' },
  ];
}

/**
 * A `scrape_configs:` document for prometheus.yml, every series labelled with the cluster's name.
 * `caFile`: where the Prometheus server finds the cluster CA, for the https endpoints.
 */
export function scrapeConfig(inv: Inventory, caFile = `pgha-${inv.cluster.name}-ca.crt`): string {
  const jobs = scrapeTargets(inv).map((t) => ({
    job_name: `${t.job}-${inv.cluster.name}`,
    metrics_path: t.path ?? '/metrics',
    ...(t.scheme === 'https' ? { scheme: 'https', tls_config: { ca_file: caFile } } : {}),
    static_configs: [{ targets: t.targets, labels: { pgha_cluster: inv.cluster.name, pgha_job: t.job } }],
  }));
  return (
    `# Prometheus scrape configuration for pgha cluster ${inv.cluster.name}, written by pgha prometheus.\n` +
    '# Merge scrape_configs into prometheus.yml, and list the rules file under rule_files.\n' +
    stringify({ scrape_configs: jobs })
  );
}

interface Rule {
  alert: string;
  expr: string;
  for: string;
  labels: { severity: string };
  annotations: { summary: string; description: string };
}

/** The alert rules (one group for the cluster). */
export function alertRules(inv: Inventory): string {
  const c = inv.cluster.name;
  const sel = (extra = '') => `{pgha_cluster="${c}"${extra}}`;
  const scope = `{scope="${c}", pgha_cluster="${c}"}`;
  const rules: Rule[] = [
    {
      alert: 'PghaNoLeader',
      expr: `max(patroni_primary${scope}) == 0 or absent(patroni_primary${scope})`,
      for: '30s',
      labels: { severity: 'critical' },
      annotations: { summary: `cluster ${c} has no primary`, description: 'No Patroni member reports itself as the primary: writes fail.' },
    },
    {
      alert: 'PghaReplicationLag',
      expr: `scalar(max(patroni_xlog_location${scope})) - (patroni_xlog_replayed_location${scope} and on (instance) (patroni_replica${scope} == 1)) > ${inv.patroni.maximum_lag_on_failover}`,
      for: '1m',
      labels: { severity: 'warning' },
      annotations: {
        summary: `a replica of ${c} lags more than maximum_lag_on_failover`,
        description: `{{ $labels.instance }} is {{ $value | humanize1024 }}B behind the primary: it is not a failover candidate and the replicas port does not route to it.`,
      },
    },
    {
      alert: 'PghaFailsafeModeActive',
      expr: `max(patroni_failsafe_mode_is_active${scope}) == 1`,
      for: '0s',
      labels: { severity: 'critical' },
      annotations: { summary: `cluster ${c} runs in failsafe mode`, description: 'etcd has no quorum: the primary keeps running only while it reaches every member. Restore etcd.' },
    },
    {
      alert: 'PghaArchivingFailing',
      expr: `pgha_archiver_last_failed_time${sel()} > pgha_archiver_last_archived_time${sel()}`,
      for: '5m',
      labels: { severity: 'critical' },
      annotations: { summary: `WAL archiving of ${c} fails`, description: 'The last archive attempt on {{ $labels.instance }} failed: point-in-time recovery and replica rebuilds depend on the archive.' },
    },
    {
      alert: 'PghaBackupTooOld',
      expr: `time() - max(pgha_backup_last_completed_timestamp_seconds${sel()}) > ${BACKUP_MAX_AGE_H * 3600} or absent(pgha_backup_last_completed_timestamp_seconds${sel()})`,
      for: '10m',
      labels: { severity: 'warning' },
      annotations: { summary: `no backup of ${c} for ${BACKUP_MAX_AGE_H} h`, description: 'The scheduled backups (daily diff, weekly full) have not completed: check the pgha-backup-* units on the repository host.' },
    },
    {
      alert: 'PghaFullBackupTooOld',
      expr: `time() - max(pgha_backup_last_completed_timestamp_seconds${sel(', type="full"')}) > ${FULL_BACKUP_MAX_AGE_H * 3600}`,
      for: '10m',
      labels: { severity: 'warning' },
      annotations: { summary: `no full backup of ${c} for ${FULL_BACKUP_MAX_AGE_H / 24} days`, description: 'The weekly full backup has not completed.' },
    },
    {
      alert: 'PghaBackupStanzaNotOk',
      expr: `pgha_backup_status_ok${sel()} == 0`,
      for: '10m',
      labels: { severity: 'critical' },
      annotations: { summary: `pgBackRest reports stanza of ${c} not ok`, description: 'pgbackrest info does not report status ok: run pgha backups.' },
    },
    {
      alert: 'PghaEtcdNoLeader',
      expr: `etcd_server_has_leader${sel()} == 0`,
      for: '30s',
      labels: { severity: 'critical' },
      annotations: { summary: `etcd member {{ $labels.instance }} of ${c} has no leader`, description: 'Without an etcd leader Patroni cannot renew the leader lock (failsafe mode may keep the primary).' },
    },
    {
      // A full data disk keeps PostgreSQL running but refuses every write that needs space, and
      // Patroni does not fail over for it: the warning has to come before.
      alert: 'PghaFilesystemAlmostFull',
      expr: `node_filesystem_avail_bytes${sel(', fstype!~"tmpfs|ramfs|overlay|squashfs|nsfs"')} / node_filesystem_size_bytes${sel(', fstype!~"tmpfs|ramfs|overlay|squashfs|nsfs"')} < 0.1`,
      for: '5m',
      labels: { severity: 'warning' },
      annotations: {
        summary: `a filesystem of ${c} is more than 90% full`,
        description: '{{ $labels.mountpoint }} on {{ $labels.instance }} has {{ $value | humanizePercentage }} free. A full PostgreSQL data disk refuses every write that needs space (Patroni does not fail over for it; pgha status says down).',
      },
    },
    {
      alert: 'PghaTargetDown',
      expr: `up${sel()} == 0`,
      for: '2m',
      labels: { severity: 'warning' },
      annotations: { summary: `{{ $labels.pgha_job }} on {{ $labels.instance }} does not answer`, description: 'Prometheus cannot scrape this endpoint of the cluster.' },
    },
    ...(tlsOn(inv)
      ? [
          {
            alert: 'PghaCertificateExpiresSoon',
            expr: `pgha_certificate_not_after_seconds${sel()} - time() < ${inv.tls.renew_before_days * 86400}`,
            for: '1h',
            labels: { severity: 'warning' },
            annotations: {
              summary: `a certificate of ${c} expires within ${inv.tls.renew_before_days} days`,
              description: '{{ $labels.path }} on {{ $labels.instance }} expires in {{ $value | humanizeDuration }}: pgha apply re-issues host certificates this close to their end (pgha tls renew any time; pgha tls renew --ca for the CA).',
            },
          },
        ]
      : []),
  ];
  return `# Alert rules for pgha cluster ${c}, written by pgha prometheus (load with rule_files).\n` + stringify({ groups: [{ name: `pgha-${c}`, rules }] }, { lineWidth: 0 });
}
