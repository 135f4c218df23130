// A session: the inventory plus one SSH connection per host, opened in parallel and reused by
// every step of a command (apply, verify, status, switchover, backups).
import type { Host, Inventory } from '../inventory/index.js';
import { Reporter } from '../engine/index.js';
import { connectAll, Masker, type Connection, type HostTarget } from '../ssh/index.js';

export interface SessionOptions {
  acceptNewHostKeys?: boolean;
  reporter?: Reporter;
  /** Only these hosts (default: every host of the inventory). */
  hosts?: Host[];
}

export interface Session {
  inv: Inventory;
  reporter: Reporter;
  masker: Masker;
  conns: Map<string, Connection>;
  conn(host: string | Host): Connection;
  /** Connections of the hosts with a role, in inventory order. */
  withRole(role: Parameters<Inventory['hostsWithRole']>[0]): Connection[];
  close(): Promise<void>;
}

export function hostTarget(h: Host): HostTarget {
  return {
    name: h.name,
    address: h.address,
    port: h.ssh.port,
    user: h.ssh.user,
    privateKeyPath: h.ssh.privateKey,
    sudo: h.ssh.sudo,
    knownHostsPath: h.ssh.knownHosts,
    hostKeyPolicy: h.ssh.hostKeyPolicy,
    connectTimeoutMs: h.ssh.connectTimeout * 1000,
    commandTimeoutMs: h.ssh.commandTimeout * 1000,
  };
}

export function secretMasker(inv: Inventory): Masker {
  return new Masker(Object.values(inv.secrets ?? {}));
}

export async function openSession(inv: Inventory, opts: SessionOptions = {}): Promise<Session> {
  const masker = secretMasker(inv);
  const reporter = opts.reporter ?? new Reporter({ masker });
  const hosts = opts.hosts ?? inv.hosts;
  const conns: Map<string, Connection> = await connectAll(hosts.map(hostTarget), {
    acceptNewHostKeys: opts.acceptNewHostKeys,
    masker,
    onCommand: reporter.command,
  });
  return sessionOver(inv, conns, { reporter, masker });
}

/**
 * A Session over the connections there are. `withRole` lists only connected hosts (a command
 * that tolerates unreachable hosts works with what answers); `conn` of a missing host throws
 * `missing(name)`.
 */
export function sessionOver(
  inv: Inventory,
  conns: Map<string, Connection>,
  opts: { reporter: Reporter; masker: Masker; missing?: (name: string) => Error },
): Session {
  const conn = (h: string | Host) => {
    const name = typeof h === 'string' ? h : h.name;
    const c = conns.get(name);
    if (!c) throw opts.missing?.(name) ?? new Error(`no connection to ${name}`);
    return c;
  };
  return {
    inv,
    reporter: opts.reporter,
    masker: opts.masker,
    conns,
    conn,
    withRole: (role) => inv.hostsWithRole(role).flatMap((h) => (conns.has(h.name) ? [conns.get(h.name)!] : [])),
    close: async () => {
      await Promise.all([...conns.values()].map((c) => c.close()));
    },
  };
}
