// Where TLS material lives, on the hosts and on the operator's machine, derived from the inventory
// alone (pure). Each service that speaks TLS has its own key, owned by its own user: etcd's
// (server, peer and etcdctl client), PostgreSQL's (the server, Patroni's REST API and Patroni's
// etcd client; Patroni runs as postgres) and, on the backup repository host, pgBackRest's (an etcd
// client: the backup list it keeps in etcd after every backup).
import { dirname, join } from 'node:path';
import type { Host, Inventory, Role } from '../../inventory/index.js';

export const TLS_DIR = '/etc/pgha/tls';
/** The CAs every host trusts (the cluster CA; during a CA rotation, the new one as well). */
export const CA_BUNDLE = `${TLS_DIR}/ca.crt`;

export type TlsService = 'etcd' | 'postgres' | 'pgbackrest';
export const TLS_SERVICES: readonly TlsService[] = ['etcd', 'postgres', 'pgbackrest'];

/** The OS user that owns (and alone reads) a service's private key. */
export const SERVICE_USER: Record<TlsService, string> = { etcd: 'etcd', postgres: 'postgres', pgbackrest: 'pgbackrest' };

/** The role whose hosts run each service. */
const SERVICE_ROLE: Record<TlsService, Role> = { etcd: 'etcd', postgres: 'postgres', pgbackrest: 'backup_repository' };

export const certFile = (s: TlsService) => `${TLS_DIR}/${s}.crt`;
export const keyFile = (s: TlsService) => `${TLS_DIR}/${s}.key`;

/** The services of a host that need a certificate, by its roles. */
export function servicesOf(h: Host): TlsService[] {
  return TLS_SERVICES.filter((s) => h.roles.has(SERVICE_ROLE[s]));
}

/** Hosts that hold TLS material: every role that speaks TLS or checks it (HAProxy checks Patroni over TLS). */
export const usesTls = (h: Host) => h.roles.has('etcd') || h.roles.has('postgres') || h.roles.has('haproxy') || h.roles.has('backup_repository');

/** Whether the inventory asks for TLS (the default). */
export const tlsOn = (inv: Pick<Inventory, 'tls'>) => inv.tls.enabled;

/**
 * The inventory as if TLS were on or off: how the cluster spoke before, or will speak, while
 * pgha moves a running cluster to TLS (every URL and client option follows inv.tls.enabled).
 */
export function withTls<T extends Pick<Inventory, 'tls'>>(inv: T, enabled: boolean): T {
  return inv.tls.enabled === enabled ? inv : { ...inv, tls: { ...inv.tls, enabled } };
}

/** The URL scheme of the cluster's HTTP links (Patroni's REST API, etcd). */
export const scheme = (inv: Pick<Inventory, 'tls'>) => (tlsOn(inv) ? 'https' : 'http');

export interface CaPaths {
  cert: string;
  key: string;
  /** A CA rotation in progress (`pgha tls renew --ca`): the new CA until it replaces the old one. */
  nextCert: string;
  nextKey: string;
}

/**
 * The cluster CA on the operator's machine: beside the secrets file, named after the cluster
 * (`lab.secrets.yml` -> `lab.ca.crt`, `lab.ca.key`), so clusters sharing a directory keep theirs.
 */
export function caPaths(inv: Pick<Inventory, 'secretsFile' | 'cluster'>): CaPaths {
  const dir = dirname(inv.secretsFile);
  const base = join(dir, `${inv.cluster.name}.ca`);
  return { cert: `${base}.crt`, key: `${base}.key`, nextCert: `${base}-next.crt`, nextKey: `${base}-next.key` };
}
