// The Prometheus files pgha writes (pgha prometheus): promtool (Debian's prometheus package,
// installed by test/setup-host.sh) accepts the rules and a prometheus.yml that uses the scrape
// config, and `promtool test rules` proves the alerts fire on sample series: no leader,
// replication lag, archiving failing, old backups, etcd without a leader; and stay quiet on a healthy cluster.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { alertRules, scrapeConfig } from '../../../../src/components/monitoring/prometheus.js';
import { loadInventory, type Inventory } from '../../../../src/inventory/index.js';
import { renderHost } from '../../../../src/components/index.js';

async function inventory(extra = 'monitoring: true\n'): Promise<Inventory> {
  const dir = mkdtempSync(join(tmpdir(), 'pgha-prom-'));
  writeFileSync(join(dir, 'inv.yml'), `${readFileSync('test/fixtures/inventories/valid.yml', 'utf8')}secrets: s.yml\n${extra}`);
  writeFileSync(join(dir, 's.yml'), readFileSync('test/fixtures/secrets/test-secrets.yaml', 'utf8'));
  chmodSync(join(dir, 's.yml'), 0o600);
  return loadInventory(join(dir, 'inv.yml'));
}

function promtool(args: string[], cwd: string) {
  const r = spawnSync('promtool', args, { cwd, encoding: 'utf8', timeout: 60_000 });
  assert.notEqual(r.error?.message.includes('ENOENT'), true, 'promtool is missing: run test/setup-host.sh');
  return r;
}

test('promtool accepts the rules file and a prometheus.yml with the scrape config', async () => {
  const inv = await inventory();
  const dir = mkdtempSync(join(tmpdir(), 'pgha-promtool-'));
  writeFileSync(join(dir, 'rules.yml'), alertRules(inv));
  const rules = promtool(['check', 'rules', 'rules.yml'], dir);
  assert.equal(rules.status, 0, rules.stdout + rules.stderr);
  // 9, and the certificates' with TLS (the default).
  assert.match(rules.stdout, /SUCCESS: 11 rules found/);
  // promtool reads the CA file the scrape config names.
  const ca = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'ca.key'), '-out', join(dir, 'ca.crt'), '-subj', '/CN=t', '-days', '1'], { encoding: 'utf8' });
  assert.equal(ca.status, 0, ca.stderr);
  writeFileSync(join(dir, 'prometheus.yml'), stringify({ ...parse(scrapeConfig(inv, 'ca.crt')), rule_files: ['rules.yml'] }));
  const config = promtool(['check', 'config', 'prometheus.yml'], dir);
  assert.equal(config.status, 0, config.stdout + config.stderr);
  const jobs = parse(scrapeConfig(inv)).scrape_configs.map((j: { job_name: string; static_configs: { targets: string[] }[] }) => `${j.job_name} ${j.static_configs[0].targets.join(',')}`);
  assert.deepEqual(jobs, [
    'pgha-patroni-t 10.1.0.1:8008,10.1.0.2:8008,10.1.0.3:8008',
    'pgha-etcd-t 10.1.0.1:2381,10.1.0.2:2381,10.1.0.3:2381',
    'pgha-haproxy-t 10.1.0.1:8405,10.1.0.2:8405,10.1.0.3:8405',
    'pgha-postgres-t 10.1.0.1:9187,10.1.0.2:9187,10.1.0.3:9187',
    'pgha-node-t 10.1.0.1:9100,10.1.0.2:9100,10.1.0.3:9100,10.1.0.9:9100',
  ]);
  // Patroni's REST API speaks TLS: Prometheus verifies it against the cluster CA; etcd's metrics have a clear-text listener of their own.
  const patroni = parse(scrapeConfig(inv, '/etc/prometheus/pgha-t-ca.crt')).scrape_configs[0];
  assert.deepEqual([patroni.scheme, patroni.tls_config], ['https', { ca_file: '/etc/prometheus/pgha-t-ca.crt' }]);
  assert.equal(parse(scrapeConfig(inv)).scrape_configs[1].scheme, undefined);
  assert.match(renderHost(inv, 'pg1', { dcs: 'etcd' }).find((f) => f.path === '/etc/default/etcd')!.content, /^ETCD_LISTEN_METRICS_URLS="http:\/\/10\.1\.0\.1:2381"$/m);
});

test('promtool test rules: a certificate within tls.renew_before_days of its end alerts (TLS, the default)', async () => {
  const inv = await inventory();
  const dir = mkdtempSync(join(tmpdir(), 'pgha-promtool-'));
  writeFileSync(join(dir, 'rules.yml'), alertRules(inv));
  const labels = { pgha_cluster: 't', pgha_job: 'pgha-node', instance: '10.1.0.2:9100', path: '/etc/pgha/tls/etcd.crt' };
  const series = `pgha_certificate_not_after_seconds{${Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(', ')}}`;
  // The certificate ends 40 days after the test's start (1970-01-01): the alert waits until 30 days before, plus its hour.
  const end = 40 * 86400;
  const rule = (parse(alertRules(inv)).groups[0].rules as { alert: string; annotations: Record<string, string> }[]).find((x) => x.alert === 'PghaCertificateExpiresSoon')!;
  const cases = [
    { eval_time: '9d', alertname: 'PghaCertificateExpiresSoon', exp_alerts: [] },
    {
      eval_time: '11d',
      alertname: 'PghaCertificateExpiresSoon',
      exp_alerts: [
        {
          exp_labels: { severity: 'warning', ...labels },
          exp_annotations: { summary: rule.annotations.summary, description: rule.annotations.description.replace('{{ $labels.path }}', labels.path).replace('{{ $labels.instance }}', labels.instance).replace('{{ $value | humanizeDuration }}', '29d 0h 0m 0s') },
        },
      ],
    },
  ];
  writeFileSync(join(dir, 'certs.yml'), stringify({ rule_files: ['rules.yml'], evaluation_interval: '1h', tests: [{ interval: '1h', input_series: [{ series, values: `${end}x400` }], alert_rule_test: cases }] }));
  const r = promtool(['test', 'rules', 'certs.yml'], dir);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  // Without TLS there is no certificate to watch.
  assert.doesNotMatch(alertRules(await inventory('monitoring: true\ntls: false\n')), /PghaCertificateExpiresSoon/);
});

test('promtool test rules: the alerts fire on sample series, and not on a healthy cluster', async () => {
  const inv = await inventory();
  const dir = mkdtempSync(join(tmpdir(), 'pgha-promtool-'));
  writeFileSync(join(dir, 'rules.yml'), alertRules(inv));
  const l = (job: string, instance: string, extra = '') => `{scope="t", pgha_cluster="t", pgha_job="${job}", instance="${instance}"${extra}}`;
  const p = (i: string, extra = '') => l('pgha-patroni', i, extra);
  const series = [
    // Healthy for 10 minutes, then pg1 (the primary) stops being primary and nobody takes over.
    { series: `patroni_primary${p('10.1.0.1:8008')}`, values: '1x10 0x10' },
    { series: `patroni_primary${p('10.1.0.2:8008')}`, values: '0x20' },
    // The primary's WAL position moves on; pg2 replays along, pg3 stops at 0 from minute 10.
    { series: `patroni_xlog_location${p('10.1.0.1:8008')}`, values: '0+1000000x20' },
    { series: `patroni_xlog_location${p('10.1.0.2:8008')}`, values: '0x20' },
    { series: `patroni_replica${p('10.1.0.2:8008')}`, values: '1x20' },
    { series: `patroni_replica${p('10.1.0.3:8008')}`, values: '1x20' },
    { series: `patroni_xlog_replayed_location${p('10.1.0.2:8008')}`, values: '0+1000000x20' },
    { series: `patroni_xlog_replayed_location${p('10.1.0.3:8008')}`, values: '0+1000000x9 9000000x11' },
    { series: `patroni_failsafe_mode_is_active${p('10.1.0.1:8008')}`, values: '0x20' },
    // Archiving on pg1 fails from minute 5 on.
    { series: `pgha_archiver_last_archived_time${l('pgha-postgres', '10.1.0.1:9187')}`, values: '60x20' },
    { series: `pgha_archiver_last_failed_time${l('pgha-postgres', '10.1.0.1:9187')}`, values: '0x4 300x16' },
    // The last full backup finished at time 0 (the test starts in 1970): 2 days old after 2 days.
    { series: `pgha_backup_last_completed_timestamp_seconds${l('pgha-node', '10.1.0.9:9100', ', stanza="main", type="full"')}`, values: '0x20' },
    { series: `pgha_backup_status_ok${l('pgha-node', '10.1.0.9:9100', ', stanza="main"')}`, values: '1x20' },
    { series: `etcd_server_has_leader${l('pgha-etcd', '10.1.0.2:2379')}`, values: '1x4 0x16' },
    // pg1's data disk (8 GiB) fills from minute 5: 5% free; its tmpfs is always full and never counts.
    { series: `node_filesystem_avail_bytes${l('pgha-node', '10.1.0.1:9100', ', mountpoint="/var/lib/postgresql", fstype="ext4"')}`, values: '4000000000x4 400000000x16' },
    { series: `node_filesystem_size_bytes${l('pgha-node', '10.1.0.1:9100', ', mountpoint="/var/lib/postgresql", fstype="ext4"')}`, values: '8000000000x20' },
    { series: `node_filesystem_avail_bytes${l('pgha-node', '10.1.0.1:9100', ', mountpoint="/run", fstype="tmpfs"')}`, values: '0x20' },
    { series: `node_filesystem_size_bytes${l('pgha-node', '10.1.0.1:9100', ', mountpoint="/run", fstype="tmpfs"')}`, values: '1000x20' },
  ];
  // Each alert's annotations as the rules file words them, templates filled in.
  const rule = (name: string) => (parse(alertRules(inv)).groups[0].rules as { alert: string; annotations: Record<string, string> }[]).find((x) => x.alert === name)!;
  const alert = (name: string, labels: Record<string, string>, fill: Record<string, string> = {}) => ({
    exp_labels: { severity: name === 'PghaReplicationLag' || name.includes('Backup') || name === 'PghaFilesystemAlmostFull' ? 'warning' : 'critical', ...labels },
    exp_annotations: Object.fromEntries(Object.entries(rule(name).annotations).map(([k, v]) => [k, Object.entries(fill).reduce((t, [from, to]) => t.split(from).join(to), v)])),
  });
  const cases = [
    { eval_time: '4m', alertname: 'PghaNoLeader', exp_alerts: [] },
    { eval_time: '4m', alertname: 'PghaReplicationLag', exp_alerts: [] },
    { eval_time: '4m', alertname: 'PghaArchivingFailing', exp_alerts: [] },
    { eval_time: '4m', alertname: 'PghaEtcdNoLeader', exp_alerts: [] },
    { eval_time: '4m', alertname: 'PghaFailsafeModeActive', exp_alerts: [] },
    { eval_time: '4m', alertname: 'PghaBackupTooOld', exp_alerts: [] },
    { eval_time: '4m', alertname: 'PghaFilesystemAlmostFull', exp_alerts: [] },
    {
      eval_time: '12m',
      alertname: 'PghaFilesystemAlmostFull',
      exp_alerts: [
        alert(
          'PghaFilesystemAlmostFull',
          { pgha_cluster: 't', pgha_job: 'pgha-node', instance: '10.1.0.1:9100', mountpoint: '/var/lib/postgresql', fstype: 'ext4', scope: 't' },
          { '{{ $labels.mountpoint }}': '/var/lib/postgresql', '{{ $labels.instance }}': '10.1.0.1:9100', '{{ $value | humanizePercentage }}': '5%' },
        ),
      ],
    },
    { eval_time: '12m', alertname: 'PghaNoLeader', exp_alerts: [alert('PghaNoLeader', {})] },
    {
      eval_time: '12m',
      alertname: 'PghaReplicationLag',
      exp_alerts: [alert('PghaReplicationLag', { scope: 't', pgha_cluster: 't', pgha_job: 'pgha-patroni', instance: '10.1.0.3:8008' }, { '{{ $labels.instance }}': '10.1.0.3:8008', '{{ $value | humanize1024 }}': '2.861Mi' })],
    },
    { eval_time: '12m', alertname: 'PghaArchivingFailing', exp_alerts: [alert('PghaArchivingFailing', { scope: 't', pgha_cluster: 't', pgha_job: 'pgha-postgres', instance: '10.1.0.1:9187' }, { '{{ $labels.instance }}': '10.1.0.1:9187' })] },
    { eval_time: '12m', alertname: 'PghaEtcdNoLeader', exp_alerts: [alert('PghaEtcdNoLeader', { scope: 't', pgha_cluster: 't', pgha_job: 'pgha-etcd', instance: '10.1.0.2:2379' }, { '{{ $labels.instance }}': '10.1.0.2:2379' })] },
  ];
  writeFileSync(join(dir, 'test.yml'), stringify({ rule_files: ['rules.yml'], evaluation_interval: '1m', tests: [{ interval: '1m', input_series: series, alert_rule_test: cases }] }));
  const r = promtool(['test', 'rules', 'test.yml'], dir);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /SUCCESS/);

  // Backups (evaluated hourly, so "for" ends an hour after the threshold): the backup alert fires after 26 h, the full-backup one after 8 days.
  const backup = [{ series: `pgha_backup_last_completed_timestamp_seconds${l('pgha-node', '10.1.0.9:9100', ', stanza="main", type="full"')}`, values: '0x300' }];
  const old = [
    { eval_time: '25h', alertname: 'PghaBackupTooOld', exp_alerts: [] },
    { eval_time: '28h', alertname: 'PghaBackupTooOld', exp_alerts: [alert('PghaBackupTooOld', {})] },
    { eval_time: '7d', alertname: 'PghaFullBackupTooOld', exp_alerts: [] },
    { eval_time: '10d', alertname: 'PghaFullBackupTooOld', exp_alerts: [alert('PghaFullBackupTooOld', {})] },
  ];
  writeFileSync(join(dir, 'backup.yml'), stringify({ rule_files: ['rules.yml'], evaluation_interval: '1h', tests: [{ interval: '1h', input_series: backup, alert_rule_test: old }] }));
  const b = promtool(['test', 'rules', 'backup.yml'], dir);
  assert.equal(b.status, 0, b.stdout + b.stderr);
});

test('monitoring off (the default): no exporter, no HAProxy exporter, no exporter login in pg_hba', async () => {
  const off = renderHost(await inventory(''), 'pg1', { dcs: 'etcd' });
  assert.ok(!off.some((f) => f.component === 'monitoring'));
  assert.ok(!off.find((f) => f.path === '/etc/haproxy/haproxy.cfg')!.content.includes('prometheus-exporter'));
  assert.ok(!off.find((f) => f.path === '/etc/patroni/config.yml')!.content.includes('pgha_monitor'));
  const on = renderHost(await inventory(), 'pg1', { dcs: 'etcd' });
  const patroni = parse(on.find((f) => f.path === '/etc/patroni/config.yml')!.content);
  assert.ok(patroni.postgresql.pg_hba.includes('local all pgha_monitor peer map=pgha'));
  assert.deepEqual(patroni.postgresql.pg_ident, ['pgha postgres postgres', 'pgha prometheus pgha_monitor']);
  assert.match(on.find((f) => f.path === '/etc/haproxy/haproxy.cfg')!.content, /bind 10\.1\.0\.1:8405\n\s+http-request use-service prometheus-exporter if \{ path \/metrics \}/);
  assert.match(on.find((f) => f.path === '/etc/default/prometheus-postgres-exporter')!.content, /user=pgha_monitor /);
  // Backup freshness where the backups run: the repository host.
  assert.ok(renderHost(await inventory(), 'bk', { dcs: 'etcd' }).some((f) => f.path === '/etc/systemd/system/pgha-backup-metrics.timer'));
  assert.ok(!on.some((f) => f.path.includes('backup-metrics')));
});
