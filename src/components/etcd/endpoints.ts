// Where etcd listens, derived from the inventory alone (pure): what its members, Patroni and
// etcdctl are told.
import type { Host, Inventory } from '../../inventory/index.js';
import { hostPort } from '../../session/remote.js';

const url = (h: Host, port: number) => `http://${hostPort(h.address, port)}`;

/** Client URLs of every member, in inventory order (etcdctl --endpoints). */
export function etcdEndpoints(inv: Inventory): string[] {
  return inv.hostsWithRole('etcd').map((h) => url(h, inv.etcd.client_port));
}

/** host:port of every member (Patroni's etcd/etcd3 hosts list). */
export function etcdClientHosts(inv: Inventory): string[] {
  return inv.hostsWithRole('etcd').map((h) => hostPort(h.address, inv.etcd.client_port));
}

export function etcdPeerUrl(inv: Inventory, h: Host): string {
  return url(h, inv.etcd.peer_port);
}

export function etcdClientUrl(inv: Inventory, h: Host): string {
  return url(h, inv.etcd.client_port);
}

/** Not /var/lib/etcd/default: that holds the single-node member Debian starts on install. */
export function etcdDataDir(inv: Inventory): string {
  return `/var/lib/etcd/${inv.cluster.name}`;
}

/** etcdctl (v3 API) against these endpoints, with short deadlines. */
export function etcdctlAt(endpoints: string[], ...args: string[]): string[] {
  return ['env', 'ETCDCTL_API=3', 'etcdctl', '--dial-timeout=2s', '--command-timeout=5s', `--endpoints=${endpoints.join(',')}`, ...args];
}

/** etcdctl (v3 API) against every member of the inventory, with short deadlines. */
export function etcdctl(inv: Inventory, ...args: string[]): string[] {
  return ['env', 'ETCDCTL_API=3', 'etcdctl', '--dial-timeout=2s', '--command-timeout=3s', `--endpoints=${etcdEndpoints(inv).join(',')}`, ...args];
}
