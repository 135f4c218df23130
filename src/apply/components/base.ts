// Base: the apt proxy (and optional PostgreSQL apt repository), Debian's "no default cluster"
// setting, and every package a host's roles need, installed in one apt call per host.
import { packages, type Operation } from '../../engine/index.js';
import type { Host, Inventory } from '../../inventory/index.js';
import type { RenderedFile } from '../../render/index.js';
import { renderedFileOp } from '../ops.js';

export function packagesFor(inv: Inventory, h: Host): string[] {
  const names = new Set<string>();
  if (inv.packages.postgresql_apt_repository) names.add('postgresql-common'); // its key signs the repository
  if (h.roles.has('etcd')) ['etcd-server', 'etcd-client'].forEach((n) => names.add(n));
  if (h.roles.has('postgres')) [`postgresql-${inv.cluster.postgres_version}`, 'patroni', 'pgbackrest', 'curl'].forEach((n) => names.add(n));
  if (h.roles.has('haproxy')) ['haproxy', 'curl'].forEach((n) => names.add(n));
  if (h.roles.has('backup_repository')) ['pgbackrest', 'openssh-client'].forEach((n) => names.add(n));
  return [...names];
}

/**
 * The apt files and the createcluster setting go first: the setting must exist before
 * postgresql-NN is installed, or Debian creates and starts its own 15/main cluster.
 */
export function baseOps(inv: Inventory, h: Host, files: RenderedFile[]): Operation[] {
  const early = files.filter((f) => f.component === 'apt' || f.component === 'postgres-common');
  return [...early.map((f) => renderedFileOp(f)), packages(packagesFor(inv, h))];
}
