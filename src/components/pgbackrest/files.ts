// pgBackRest's files: its configuration on the database hosts and on the repository host, the
// SSH client config that shares one connection to the repository host, the archive_command
// wrapper, and the systemd units of the scheduled backups.
import type { Inventory } from '../../inventory/index.js';
import { renderFile, type RenderedFile } from '../../render/template.js';
import { hostPort } from '../../session/remote.js';
import { dataDir, leaderKey } from '../patroni/paths.js';
import type { Dcs, RenderInput } from '../types.js';
import { etcdEndpoints } from '../etcd/endpoints.js';
import { ARCHIVE_PUSH, PGBACKREST_CONF, PGBACKREST_SSH_CONFIG, RECORD_BACKUPS, recordKey, REPO_USER } from './paths.js';
import { CA_BUNDLE, certFile, keyFile, tlsOn } from '../tls/paths.js';

function context(inv: Inventory, host: RenderInput['host'], platform: RenderInput['platform']) {
  return {
    cluster: inv.cluster,
    host,
    users: inv.patroni.users,
    patroni: { ...inv.patroni, restapiAddress: hostPort(host.address, inv.patroni.restapi_port) },
    pgbackrest: inv.pgbackrest,
    repositoryHost: inv.repositoryHost,
    postgres: { dataDir: dataDir(inv, platform.release) },
    postgresServers: inv.hostsWithRole('postgres').map((h, i) => ({ name: h.name, index: i + 1, hostAddress: h.address })),
    // With TLS: the CA every https link is verified against; the repository host's etcd client certificate.
    tls: tlsOn(inv) ? { ca: CA_BUNDLE, cert: certFile('pgbackrest'), key: keyFile('pgbackrest') } : false,
  };
}

/**
 * What the archive_command wrapper asks etcd: who holds the leader key (Patroni's DCS: the v2 API
 * for `etcd`, the v3 JSON gateway for `etcd3`), as postgres with the host's PostgreSQL certificate.
 */
function leaderKeyContext(inv: Inventory, host: RenderInput['host'], dcs: Dcs) {
  const key = leaderKey(inv);
  return {
    member: host.name,
    etcd3: dcs === 'etcd3',
    etcdEndpoints: etcdEndpoints(inv),
    leaderKey: key,
    leaderKeyBase64: Buffer.from(key).toString('base64'),
    tls: tlsOn(inv) ? { ca: CA_BUNDLE, cert: certFile('postgres'), key: keyFile('postgres') } : false,
  };
}

export function pgbackrestFiles({ inv, host, platform, dcs }: RenderInput): RenderedFile[] {
  const ctx = context(inv, host, platform);
  const files: RenderedFile[] = [];
  if (host.roles.has('postgres')) {
    files.push(renderFile('pgbackrest', ARCHIVE_PUSH, 'archive-push.sh.hbs', { ...ctx, ...leaderKeyContext(inv, host, dcs) }, { mode: 0o755 }));
    files.push(renderFile('pgbackrest', PGBACKREST_CONF, 'db.conf.hbs', ctx, { owner: 'postgres', group: 'postgres', mode: 0o640 }));
    if (inv.repositoryHost) files.push(renderFile('pgbackrest', PGBACKREST_SSH_CONFIG, 'ssh-client.conf.hbs', ctx, { owner: 'postgres', group: 'postgres', mode: 0o600 }));
  }
  if (host.roles.has('backup_repository')) {
    files.push(renderFile('pgbackrest', PGBACKREST_CONF, 'repo.conf.hbs', ctx, { owner: REPO_USER, group: REPO_USER, mode: 0o640 }));
    files.push(renderFile('pgbackrest', RECORD_BACKUPS, 'record-backups.sh.hbs', { ...ctx, recordKey: recordKey(inv), etcdEndpoints: etcdEndpoints(inv) }, { mode: 0o755 }));
  }
  // Scheduled backups run where the repository is: the repository host, or (shared) every
  // database host, where only the primary goes ahead.
  const shared = inv.pgbackrest.repository.type === 'shared';
  if (host.roles.has('backup_repository') || (shared && host.roles.has('postgres'))) {
    const backup = { user: shared ? 'postgres' : REPO_USER, onPrimaryOnly: shared, record: shared ? null : RECORD_BACKUPS };
    for (const type of ['full', 'diff'] as const) {
      const more = { ...ctx, type, backup, calendar: inv.pgbackrest.schedule[type] };
      files.push(renderFile('pgbackrest', `/etc/systemd/system/pgha-backup-${type}.service`, 'backup.service.hbs', more));
      files.push(renderFile('pgbackrest', `/etc/systemd/system/pgha-backup-${type}.timer`, 'backup.timer.hbs', more));
    }
  }
  return files;
}

/** The backup timers and their services among a host's files. */
export const isScheduleUnit = (f: RenderedFile) => f.path.startsWith('/etc/systemd/system/pgha-backup-');
