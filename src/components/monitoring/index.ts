// Metrics (monitoring: true): the endpoints a Prometheus server scrapes. Patroni's /metrics and
// etcd's /metrics are there already; this component adds node_exporter on every host,
// prometheus-postgres-exporter on the database hosts (logging in as the least-privilege role
// pgha_monitor, a member of pg_monitor, over the local socket: no password), HAProxy's built-in
// exporter (haproxy.cfg, haproxy component) and a backup-freshness textfile for node_exporter
// where the scheduled backups run. `pgha prometheus` writes the scrape config and alert rules.
import { daemonReload, directory, restartService, service, type Handler, type Operation } from '../../engine/index.js';
import { PghaError } from '../../errors.js';
import type { Host, Inventory } from '../../inventory/index.js';
import { fileOp } from '../../render/op.js';
import { renderFile, type RenderedFile } from '../../render/template.js';
import { hostPort, sqlLocal } from '../../session/remote.js';
import { ident, literal } from '../databases/sql.js';
import type { Session } from '../../session/session.js';
import { currentLeader } from '../patroni/cluster.js';
import { REPO_USER } from '../pgbackrest/paths.js';
import { check, renderedFile, type Component, type RenderInput } from '../types.js';
import { EXPORTER_PORTS, MONITOR_ROLE, scrapeTargets } from './prometheus.js';
import { CA_BUNDLE, TLS_DIR, tlsOn } from '../tls/paths.js';

const EXPORTER = 'prometheus-postgres-exporter';
const EXPORTER_DEFAULT = '/etc/default/prometheus-postgres-exporter';
const EXPORTER_QUERIES = '/etc/pgha/postgres-exporter-queries.yml';
const BACKUP_SCRIPT = '/usr/local/lib/pgha/backup-metrics';
const BACKUP_UNIT = '/etc/systemd/system/pgha-backup-metrics';
// Debian's node_exporter reads textfiles from here (its package creates it).
const TEXTFILE_DIR = '/var/lib/prometheus/node-exporter';
// With TLS: the certificates' end of validity, hourly, on every host.
const CERT_SCRIPT = '/usr/local/lib/pgha/cert-metrics';
const CERT_UNIT = '/etc/systemd/system/pgha-cert-metrics';
const CERT_TEXTFILE = `${TEXTFILE_DIR}/pgha_certificates.prom`;

/** pg_hba and pg_ident lines Patroni's config needs for the exporter's login (none without monitoring). */
export function monitorHba(inv: Inventory): { hba: string[]; ident: string[] } {
  if (!inv.monitoring) return { hba: [], ident: [] };
  return { hba: [`local all ${MONITOR_ROLE} peer map=pgha`], ident: [`pgha prometheus ${MONITOR_ROLE}`] };
}

/** Where the scheduled backups run (the repository host, or every database host with a shared repository), and as whom. */
function backupRunner(inv: Inventory, host: Host): string | null {
  if (host.roles.has('backup_repository')) return REPO_USER;
  if (inv.pgbackrest.repository.type === 'shared' && host.roles.has('postgres')) return 'postgres';
  return null;
}

function monitoringFiles({ inv, host }: RenderInput): RenderedFile[] {
  if (!inv.monitoring) return [];
  const files: RenderedFile[] = [];
  if (host.roles.has('postgres')) {
    files.push(
      renderFile('monitoring', EXPORTER_DEFAULT, 'postgres-exporter.default.hbs', {
        role: MONITOR_ROLE,
        port: inv.patroni.postgres_port,
        listen: hostPort(host.address, EXPORTER_PORTS.postgres),
        queries: EXPORTER_QUERIES,
      }),
      renderFile('monitoring', EXPORTER_QUERIES, 'postgres-exporter-queries.yml.hbs', {}),
    );
  }
  const user = backupRunner(inv, host);
  if (user) {
    const ctx = { user, stanza: inv.pgbackrest.stanza, textfile: `${TEXTFILE_DIR}/pgha_backup.prom`, script: BACKUP_SCRIPT };
    files.push(
      renderFile('monitoring', BACKUP_SCRIPT, 'backup-metrics.py.hbs', ctx, { mode: 0o755 }),
      renderFile('monitoring', `${BACKUP_UNIT}.service`, 'backup-metrics.service.hbs', ctx),
      renderFile('monitoring', `${BACKUP_UNIT}.timer`, 'backup-metrics.timer.hbs', ctx),
    );
  }
  if (tlsOn(inv)) {
    const ctx = { dir: TLS_DIR, textfile: CERT_TEXTFILE, script: CERT_SCRIPT };
    files.push(
      renderFile('monitoring', CERT_SCRIPT, 'cert-metrics.sh.hbs', ctx, { mode: 0o755 }),
      renderFile('monitoring', `${CERT_UNIT}.service`, 'cert-metrics.service.hbs', ctx),
      renderFile('monitoring', `${CERT_UNIT}.timer`, 'cert-metrics.timer.hbs', ctx),
    );
  }
  return files;
}

/** The exporter's role on the leader: LOGIN (peer only, no password) and a member of pg_monitor, nothing more. */
function monitorRoleOp(inv: Inventory, running: boolean): Operation {
  const want = `select rolcanlogin and not rolsuper and not rolcreatedb and not rolcreaterole and pg_has_role(oid, 'pg_monitor', 'member') from pg_roles where rolname = ${literal(MONITOR_ROLE)}`;
  const state = async (conn: Parameters<Operation['check']>[0]) => (running ? (await sqlLocal(inv, conn, want)).stdout.trim() : '');
  return {
    describe: `role ${MONITOR_ROLE} (pg_monitor)`,
    async check(conn) {
      const s = await state(conn);
      return s === 't' ? null : { summary: s === '' ? 'create (LOGIN, member of pg_monitor)' : 'set LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE, grant pg_monitor' };
    },
    async apply(conn) {
      const exists = (await state(conn)) !== '';
      const attrs = 'LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS';
      await sqlLocal(inv, conn, `${exists ? `ALTER ROLE ${ident(MONITOR_ROLE)} WITH ${attrs}` : `CREATE ROLE ${ident(MONITOR_ROLE)} WITH ${attrs}`}; GRANT pg_monitor TO ${ident(MONITOR_ROLE)};`, { overStdin: true });
    },
  };
}

/** Every endpoint, asked from its own host: it answers with one of its metric names. The count, or what is wrong. */
async function endpointsProblem(session: Session): Promise<{ n: number } | string> {
  const { inv } = session;
  const expect: Record<string, string> = {
    'pgha-patroni': 'patroni_primary',
    'pgha-etcd': 'etcd_server_has_leader',
    'pgha-haproxy': 'haproxy_process_',
    'pgha-postgres': 'pg_up 1',
    'pgha-node': 'node_load1',
  };
  const byAddress = new Map(inv.hosts.map((h) => [hostPort(h.address, 0).replace(/:0$/, ''), h.name]));
  // One command per host (one SSH channel each: sshd limits a connection's sessions).
  const perHost = new Map<string, { job: string; url: string }[]>();
  for (const t of scrapeTargets(inv)) {
    for (const target of t.targets) {
      const host = byAddress.get(target.replace(/:\d+$/, ''))!;
      perHost.set(host, [...(perHost.get(host) ?? []), { job: t.job, url: `${t.scheme}://${target}/metrics` }]);
    }
  }
  // https endpoints (Patroni's with TLS) are verified against the cluster CA, as Prometheus is told to.
  const ca = tlsOn(inv) ? `--cacert ${CA_BUNDLE} ` : '';
  const script = `while [ $# -gt 0 ]; do echo "$(curl -sS --max-time 5 ${ca}-- "$1" 2>/dev/null | grep -c -F -- "$2")"; shift 2; done`;
  const bad: string[] = [];
  let n = 0;
  await Promise.all(
    [...perHost].map(async ([host, list]) => {
      const r = await session.conn(host).run(['sh', '-c', script, 'sh', ...list.flatMap((x) => [x.url, expect[x.job]])], { sudo: false, check: false, timeoutMs: 60_000 });
      const counts = r.stdout.split('\n');
      list.forEach((x, i) => {
        n++;
        if (!(Number(counts[i]) > 0)) bad.push(`${x.job} on ${host}: no ${expect[x.job]} at ${x.url} (or no answer)`);
      });
    }),
  );
  return bad.length ? bad.sort().join('; ') : { n };
}

export const monitoring: Component = {
  name: 'monitoring',
  packages: (inv, h) => (!inv.monitoring ? [] : ['prometheus-node-exporter', ...(h.roles.has('postgres') ? ['prometheus-postgres-exporter'] : []), ...(backupRunner(inv, h) ? ['python3'] : [])]),
  files: monitoringFiles,
  async prepare(ctx) {
    const { session, rollout } = ctx;
    if (!session.inv.monitoring) return;
    await rollout.stage('monitoring', [...session.conns.values()], (conn) => {
      const h = session.inv.host(conn.target.name);
      const mine = (p: string, notify = [] as Handler[]) => fileOp(renderedFile(ctx, h, p), notify);
      const ops: Operation[] = [service('prometheus-node-exporter')];
      if (h.roles.has('postgres')) {
        // Debian's package starts the exporter on install with an empty DSN: it fails until systemd's start limit stops it.
        const restart = [restartService(EXPORTER, { resetFailed: true })];
        ops.push(directory('/etc/pgha', { owner: 'root', group: 'root', mode: 0o755 }), mine(EXPORTER_QUERIES, restart), mine(EXPORTER_DEFAULT, restart), service(EXPORTER, { resetFailed: true }));
      }
      if (backupRunner(session.inv, h)) {
        ops.push(mine(BACKUP_SCRIPT), mine(`${BACKUP_UNIT}.service`, [daemonReload]), mine(`${BACKUP_UNIT}.timer`, [daemonReload]));
      }
      if (tlsOn(session.inv)) ops.push(mine(CERT_SCRIPT), mine(`${CERT_UNIT}.service`, [daemonReload]), mine(`${CERT_UNIT}.timer`, [daemonReload]));
      return ops;
    });
  },
  async start(ctx) {
    const { session, rollout } = ctx;
    if (!session.inv.monitoring) return;
    const leader = await currentLeader(session);
    if (!leader && !rollout.check) throw new PghaError('monitoring: no running Patroni leader to create the exporter role on');
    await rollout.stage('monitoring role', [session.conn(leader?.name ?? session.inv.hostsWithRole('postgres')[0].name)], () => [monitorRoleOp(session.inv, leader !== undefined)]);
    // The exporter logs in once the role exists (and Patroni has reloaded pg_hba): wait until every endpoint answers.
    if (!rollout.check) {
      await rollout.waitFor('monitoring: every metrics endpoint answers', async () => {
        const r = await endpointsProblem(session);
        return typeof r === 'string' ? r : true;
      }, { timeoutMs: 60_000, intervalMs: 2000 });
    }
    // The backup freshness: the timer, and a first reading now (the first backup is taken by then).
    const runners = [...session.conns.values()].filter((c) => backupRunner(session.inv, session.inv.host(c.target.name)));
    await rollout.stage('backup metrics', runners, () => [
      service('pgha-backup-metrics.timer'),
      {
        describe: 'backup freshness textfile',
        async check(conn) {
          return (await conn.run(['test', '-s', `${TEXTFILE_DIR}/pgha_backup.prom`], { check: false })).code === 0 ? null : { summary: 'write it now (pgha-backup-metrics.service)' };
        },
        async apply(conn) {
          await conn.run(['systemctl', 'start', 'pgha-backup-metrics.service'], { timeoutMs: 180_000 });
        },
      },
    ]);
    // The certificates' end of validity: the timer, and a first reading now.
    if (tlsOn(session.inv)) {
      await rollout.stage('certificate metrics', [...session.conns.values()], () => [
        service('pgha-cert-metrics.timer'),
        {
          describe: 'certificate validity textfile',
          async check(conn) {
            return (await conn.run(['test', '-s', CERT_TEXTFILE], { check: false })).code === 0 ? null : { summary: 'write it now (pgha-cert-metrics.service)' };
          },
          async apply(conn) {
            await conn.run(['systemctl', 'start', 'pgha-cert-metrics.service'], { timeoutMs: 60_000 });
          },
        },
      ]);
    }
  },
  // Each endpoint answers with its metric names (the start gate waited for it).
  verify: (session) =>
    session.inv.monitoring
      ? [
          check('monitoring', undefined, async () => {
            // postgres_exporter 0.11 answers pg_up 0 to its first scrape after PostgreSQL restarted
            // (that scrape drops the broken connection; the next one logs in again): asked up to 3 times.
            let r = await endpointsProblem(session);
            for (let i = 0; i < 2 && typeof r === 'string'; i++) {
              await new Promise((res) => setTimeout(res, 2000));
              r = await endpointsProblem(session);
            }
            if (typeof r === 'string') throw new PghaError(r);
            return `${r.n} metrics endpoints answer`;
          }),
        ]
      : [],
};
