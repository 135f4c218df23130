// Where Patroni and PostgreSQL live on a database host, derived from the inventory alone (pure).
import type { Host, Inventory } from '../../inventory/index.js';
import { hostPort } from '../../session/remote.js';
import { scheme } from '../tls/paths.js';

/** Patroni's configuration (it holds passwords: postgres:postgres 0600). */
export const PATRONI_CONFIG = '/etc/patroni/config.yml';
/** Home of the OS user postgres. */
export const POSTGRES_HOME = '/var/lib/postgresql';

export const dataDir = (inv: Inventory) => `/var/lib/postgresql/${inv.cluster.postgres_version}/main`;
export const binDir = (inv: Inventory) => `/usr/lib/postgresql/${inv.cluster.postgres_version}/bin`;

/** A URL of the Patroni REST API of `h` (https with TLS: curl on the hosts verifies it against the cluster CA). */
export function restapiUrl(inv: Inventory, h: Host, path: string): string {
  return `${scheme(inv)}://${hostPort(h.address, inv.patroni.restapi_port)}${path}`;
}
