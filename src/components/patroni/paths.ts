// Where Patroni and PostgreSQL live on a database host, derived from the inventory alone (pure).
import type { Host, Inventory } from '../../inventory/index.js';
import { hostPort } from '../../session/remote.js';
import type { Release } from '../base/release.js';
import { PATRONI_RELEASES } from './version.js';
import { scheme } from '../tls/paths.js';

/** Patroni's configuration (it holds passwords: postgres:postgres 0600). */
export const PATRONI_CONFIG = '/etc/patroni/config.yml';
/** Home of the OS user postgres. */
export const POSTGRES_HOME = '/var/lib/postgresql';

/** The PostgreSQL major: the inventory's, else the default of the hosts' Debian release. */
export const postgresMajor = (inv: Inventory, release: Release): number => inv.cluster.postgres_version ?? PATRONI_RELEASES[release.name].postgres;

/** Patroni's leader key in etcd (its value: the leader's member name). */
export const leaderKey = (inv: Inventory) => `${inv.patroni.namespace}${inv.cluster.name}/leader`;

export const dataDir = (inv: Inventory, release: Release) => `/var/lib/postgresql/${postgresMajor(inv, release)}/main`;
export const binDir = (inv: Inventory, release: Release) => `/usr/lib/postgresql/${postgresMajor(inv, release)}/bin`;

/** A URL of the Patroni REST API of `h` (https with TLS: curl on the hosts verifies it against the cluster CA). */
export function restapiUrl(inv: Inventory, h: Host, path: string): string {
  return `${scheme(inv)}://${hostPort(h.address, inv.patroni.restapi_port)}${path}`;
}
