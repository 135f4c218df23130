// Where etcd listens, derived from the inventory alone (pure): what its members, Patroni and
// etcdctl are told. With TLS (the default) every URL is https and every client, etcdctl
// included, presents a certificate signed by the cluster CA.
import type { Host, Inventory } from '../../inventory/index.js';
import { hostPort } from '../../session/remote.js';
import { CA_BUNDLE, certFile, keyFile, scheme, SERVICE_USER, tlsOn } from '../tls/paths.js';

const url = (inv: Pick<Inventory, 'tls'>, h: Host, port: number) => `${scheme(inv)}://${hostPort(h.address, port)}`;

/** Client URLs of every member, in inventory order (etcdctl --endpoints). */
export function etcdEndpoints(inv: Inventory): string[] {
  return inv.hostsWithRole('etcd').map((h) => url(inv, h, inv.etcd.client_port));
}

/** host:port of every member (Patroni's etcd/etcd3 hosts list). */
export function etcdClientHosts(inv: Inventory): string[] {
  return inv.hostsWithRole('etcd').map((h) => hostPort(h.address, inv.etcd.client_port));
}

export function etcdPeerUrl(inv: Inventory, h: Host): string {
  return url(inv, h, inv.etcd.peer_port);
}

export function etcdClientUrl(inv: Inventory, h: Host): string {
  return url(inv, h, inv.etcd.client_port);
}

/** Not /var/lib/etcd/default: that holds the single-node member Debian starts on install. */
export function etcdDataDir(inv: Inventory): string {
  return `/var/lib/etcd/${inv.cluster.name}`;
}

/** etcdctl's TLS flags (v3 spelling; v2: `v2: true`): the member's own certificate as client certificate. */
export function etcdctlTlsFlags(inv: Pick<Inventory, 'tls'>, opts: { v2?: boolean } = {}): string[] {
  if (!tlsOn(inv)) return [];
  return opts.v2
    ? [`--ca-file=${CA_BUNDLE}`, `--cert-file=${certFile('etcd')}`, `--key-file=${keyFile('etcd')}`]
    : [`--cacert=${CA_BUNDLE}`, `--cert=${certFile('etcd')}`, `--key=${keyFile('etcd')}`];
}

/**
 * How etcdctl runs on an etcd host: as user etcd with TLS (its key is etcd's, mode 0600), as
 * the login user without. Spread into conn.run's options.
 */
export function etcdctlAs(inv: Pick<Inventory, 'tls'>): { sudo?: boolean; user?: string } {
  return tlsOn(inv) ? { user: SERVICE_USER.etcd } : { sudo: false };
}

/** Whether these client URLs speak TLS (etcd's own membership tells, whatever the inventory says). */
const speaksTls = (endpoints: string[]) => endpoints.some((u) => u.startsWith('https://'));

/**
 * etcdctl (v3 API) against these endpoints, with short deadlines; over TLS (https endpoints) with
 * the member's certificate as client certificate: run it with etcdctlAsAt(endpoints).
 */
export function etcdctlAt(endpoints: string[], ...args: string[]): string[] {
  const tls = etcdctlTlsFlags({ tls: { enabled: speaksTls(endpoints) } as Inventory['tls'] });
  return ['env', 'ETCDCTL_API=3', 'etcdctl', '--dial-timeout=2s', '--command-timeout=5s', `--endpoints=${endpoints.join(',')}`, ...tls, ...args];
}

/** How etcdctlAt(endpoints) runs on an etcd host (see etcdctlAs). */
export function etcdctlAsAt(endpoints: string[]): { sudo?: boolean; user?: string } {
  return speaksTls(endpoints) ? { user: SERVICE_USER.etcd } : { sudo: false };
}

/** How an etcdctl command line made here runs: as etcd when it carries the TLS flags. */
export function etcdctlAsFor(argv: string[]): { sudo?: boolean; user?: string } {
  return argv.some((a) => a.startsWith('--cacert=')) ? { user: SERVICE_USER.etcd } : { sudo: false };
}

/** etcdctl (v3 API) against every member, with short deadlines; run it with etcdctlAs(inv). */
export function etcdctl(inv: Inventory, ...args: string[]): string[] {
  return ['env', 'ETCDCTL_API=3', 'etcdctl', '--dial-timeout=2s', '--command-timeout=3s', `--endpoints=${etcdEndpoints(inv).join(',')}`, ...etcdctlTlsFlags(inv), ...args];
}
