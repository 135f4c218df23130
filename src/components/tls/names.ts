// The names a host's certificate must carry (pure). Clients verify a server by the name or
// address they connected to, so each certificate lists the host's name and address; PostgreSQL's
// also lists every HAProxy host (HAProxy forwards TCP: a client connected to an HAProxy host runs
// its TLS handshake with the member PostgreSQL behind it), the virtual IP, the inventory's tls.client_names, and
// localhost (Patroni's own connections to its PostgreSQL go to localhost with sslmode=verify-full).
import { canonicalAddress, ipVersion, type Host, type Inventory } from '../../inventory/index.js';
import type { TlsService } from './paths.js';

export interface CertNames {
  /** Subject CN: the host's name. */
  cn: string;
  /** DNS subjectAltNames, lowercase, sorted. */
  dns: string[];
  /** IP subjectAltNames, canonical spelling, sorted. */
  ip: string[];
}

function names(cn: string, all: string[]): CertNames {
  const dns = new Set<string>();
  const ip = new Set<string>();
  for (const n of all) {
    if (ipVersion(n)) ip.add(canonicalAddress(n));
    else dns.add(n.toLowerCase().replace(/\.$/, ''));
  }
  return { cn, dns: [...dns].sort(), ip: [...ip].sort() };
}

/** What the certificate of `service` on `host` must name. */
export function wantedNames(inv: Inventory, host: Host, service: TlsService): CertNames {
  const own = [host.name, host.address];
  // etcd's serves its own address; pgBackRest's is a client certificate only.
  if (service === 'etcd' || service === 'pgbackrest') return names(host.name, own);
  const proxies = inv.hostsWithRole('haproxy').flatMap((h) => [h.name, h.address]);
  // A virtual IP (vip:) is where clients connect: it is a name of every member that may hold it.
  const vip = inv.vip ? [inv.vip.address] : [];
  return names(host.name, [...own, 'localhost', '127.0.0.1', ...proxies, ...vip, ...inv.tls.client_names]);
}

/** The same names (order aside)? */
export function sameNames(a: CertNames, b: CertNames): boolean {
  return a.cn === b.cn && a.dns.join(',') === b.dns.join(',') && a.ip.join(',') === b.ip.join(',');
}

/** "node1, 10.0.0.1, localhost" for messages. */
export function describeNames(n: CertNames): string {
  return [...n.dns, ...n.ip].join(', ');
}
