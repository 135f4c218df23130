// The files of a database host's PostgreSQL and Patroni: Debian's "no default cluster" setting
// (written before postgresql-NN is installed) and Patroni's config.yml, rendered whole.
import { ipVersion } from '../../inventory/schema.js';
import { MANAGED_PARAMETERS, type Host, type Inventory } from '../../inventory/index.js';
import { renderFile, type RenderedFile } from '../../render/template.js';
import { bracketed, hostPort } from '../../session/remote.js';
import { yamlSecretMask } from '../../render/secret-mask.js';
import { etcdClientHosts } from '../etcd/endpoints.js';
import { userHbaRules } from '../databases/sql.js';
import { patroniCallbacks } from '../notifications/index.js';
import { monitorHba } from '../monitoring/index.js';
import { pgbouncerHba } from '../pgbouncer/index.js';
import { archiveCommand, replicaRestoreCommand, restoreCommand } from '../pgbackrest/paths.js';
import type { Platform, RenderInput } from '../types.js';
import { effectiveTiming } from './timing.js';
import { binDir, dataDir, PATRONI_CONFIG, postgresMajor } from './paths.js';
import { CA_BUNDLE, certFile, keyFile, tlsOn } from '../tls/paths.js';

const CREATECLUSTER_CONF = '/etc/postgresql-common/createcluster.d/pgha.conf';

/**
 * Keys of Patroni's config whose values are or may hold passwords: every *password (restapi,
 * postgresql.authentication.*, ssl and key file ones) and connection strings (primary_conninfo).
 */
export const isPatroniSecretKey = (key: string): boolean => /(password|conninfo)$/i.test(key);
const PATRONI_MASK = yamlSecretMask(isPatroniSecretKey);

function hbaAddress(addr: string): string {
  const v = ipVersion(addr);
  return v === 4 ? `${addr}/32` : v === 6 ? `${addr}/128` : addr;
}

/**
 * pgha's own pg_hba rules (replication, rewind and superuser between members, localhost), then
 * the inventory's. With TLS every TCP rule of pgha's is hostssl, and after them every connection
 * without TLS is rejected: the inventory's own rules (clients through HAProxy) then only ever
 * match TLS connections, whatever their type says.
 */
function hbaRules(inv: Inventory, ssl: boolean): string[] {
  const u = inv.patroni.users;
  const members = inv.hostsWithRole('postgres').map((h) => hbaAddress(h.address));
  const rule = (db: string, user: string, addr: string) => `${ssl ? 'hostssl' : 'host'} ${db} ${user} ${addr} scram-sha-256`;
  return [
    // The OS user postgres (Patroni's local tools, pgBackRest) connects over the socket.
    `local all ${u.superuser} peer map=pgha`,
    rule('all', u.superuser, '127.0.0.1/32'),
    // Patroni reads the local timeline over a replication connection to localhost.
    rule('replication', u.replication, '127.0.0.1/32'),
    // Listening on every address (vip:, and until a restart after vip: is removed), Patroni
    // connects to "localhost", which may be ::1.
    rule('all', u.superuser, '::1/128'),
    rule('replication', u.replication, '::1/128'),
    ...members.map((a) => rule('replication', u.replication, a)),
    ...members.map((a) => rule('all', u.rewind, a)),
    ...members.map((a) => rule('all', u.superuser, a)),
    // With TLS, clear text is refused from everywhere before any rule below can let it in.
    ...(ssl ? ['hostnossl all all all reject', 'hostnossl replication all all reject'] : []),
    // The metrics exporter's peer login (monitoring), the inventory's users (users[].pg_hba), then the operator's own lines.
    ...monitorHba(inv).hba,
    ...pgbouncerHba(inv),
    ...userHbaRules(inv),
    ...inv.patroni.pg_hba,
  ];
}

/** PostgreSQL parameters: pgha's replication and archiving settings, then the inventory's. */
function parameters(inv: Inventory): { key: string; value: string | number | boolean }[] {
  const all: Record<string, string | number | boolean> = {
    wal_level: 'replica',
    hot_standby: 'on',
    wal_log_hints: 'on',
    archive_mode: 'on',
    archive_command: archiveCommand(),
    max_wal_senders: 10,
    max_replication_slots: 10,
    wal_keep_size: '1GB',
  };
  // Names are case-insensitive in PostgreSQL: the inventory's spelling of a default replaces it.
  // The ones pgha manages are never taken from the inventory (validate refuses them too).
  for (const [name, value] of Object.entries(inv.patroni.parameters)) {
    if (!(MANAGED_PARAMETERS as readonly string[]).includes(name.toLowerCase())) all[name.toLowerCase()] = value;
  }
  return Object.entries(all).map(([key, value]) => ({ key, value }));
}

/**
 * Which of Patroni's links use TLS. `tls` and `plain` are the inventory's two settings;
 * `ssl-only` is a step of moving a running cluster to TLS: PostgreSQL already serves TLS (a reload),
 * everything else is as before, so replicas switching to verify-full find the leader ready.
 */
export type PatroniTransport = 'plain' | 'ssl-only' | 'tls';

function patroniContext(inv: Inventory, host: Host, dcs: RenderInput['dcs'], platform: Platform, transport: PatroniTransport) {
  const p = inv.patroni;
  const t = effectiveTiming(inv.timing.patroni, platform.patroniVersions);
  const full = transport === 'tls';
  return {
    cluster: inv.cluster,
    host: { name: host.name, address: host.address, tags: host.tags },
    dcs,
    // What the Patroni runs with (3.2 and later raise a short ttl): the DCS then says what is in effect.
    timing: { ttl: t.ttl, loop_wait: t.loop_wait, retry_timeout: t.retry_timeout },
    users: p.users,
    secrets: inv.secrets,
    patroni: { ...p, restapiAddress: hostPort(host.address, p.restapi_port) },
    etcdClientHosts: etcdClientHosts(inv),
    parameters: parameters(inv),
    restoreCommand: restoreCommand(inv),
    replicaRestoreCommand: replicaRestoreCommand(inv),
    postgres: {
      // One port, at the end: PostgreSQL listens on the host's address and on localhost.
      // Patroni strips the brackets before it sets listen_addresses.
      // With a virtual IP (vip:) every address: the VIP comes and goes, and PostgreSQL cannot bind an absent one.
      listen: inv.vip ? `*:${p.postgres_port}` : `${bracketed(host.address)},127.0.0.1:${p.postgres_port}`,
      connectAddress: hostPort(host.address, p.postgres_port),
      dataDir: dataDir(inv, platform.release),
      binDir: binDir(inv, platform.release),
    },
    pgHba: hbaRules(inv, full),
    callbacks: patroniCallbacks(inv),
    pgIdent: [`pgha postgres ${p.users.superuser}`, ...monitorHba(inv).ident],
    // Patroni runs as postgres: PostgreSQL's key serves its REST API and etcd client too.
    tls: { rest: full, dcs: full, ssl: transport !== 'plain', verify: full, cert: certFile('postgres'), key: keyFile('postgres'), ca: CA_BUNDLE },
  };
}

/** /etc/patroni/config.yml of one member (its links as the inventory says, unless `transport`). */
export function patroniConfigFile(inv: Inventory, host: Host, dcs: RenderInput['dcs'], platform: Platform, transport: PatroniTransport = tlsOn(inv) ? 'tls' : 'plain'): RenderedFile {
  return renderFile('patroni', PATRONI_CONFIG, 'patroni.yml.hbs', patroniContext(inv, host, dcs, platform, transport), { owner: 'postgres', group: 'postgres', mode: 0o600, secret: true, mask: PATRONI_MASK });
}

export function patroniFiles({ inv, host, dcs, platform }: RenderInput): RenderedFile[] {
  if (!host.roles.has('postgres')) return [];
  return [
    renderFile('patroni', CREATECLUSTER_CONF, 'createcluster.conf.hbs', { major: postgresMajor(inv, platform.release) }, { beforePackages: true }),
    patroniConfigFile(inv, host, dcs, platform),
  ];
}
