// Connections for commands that must work while part of the cluster is down (status, failover):
// each host is connected on its own with a short connect timeout, and one that does not answer
// is recorded as unreachable instead of failing the whole command (openSession is all or nothing).
import type { Inventory } from '../inventory/index.js';
import { Reporter } from '../engine/index.js';
import { HostError } from '../errors.js';
import { hostTarget, secretMasker, sessionOver, type Session } from '../cluster/session.js';
import { SshConnection, type Connection } from '../ssh/index.js';

/** At most this long per connect: a partitioned or powered-off host must not stall the command. */
export const REACH_CONNECT_TIMEOUT_SEC = 3;

export interface Reach {
  inv: Inventory;
  /** Per host: its connection, or undefined once the connect failed. Never rejects. */
  pending: Map<string, Promise<Connection | undefined>>;
  /** Why a host could not be reached (filled as connects fail). */
  unreachable: Map<string, string>;
  /** Resolves when every connect has settled: a Session over the reachable hosts. */
  session(): Promise<Session>;
  close(): Promise<void>;
}

export function connectEach(inv: Inventory, opts: { reporter?: Reporter; connectTimeoutSec?: number } = {}): Reach {
  const reporter = opts.reporter ?? new Reporter();
  const masker = secretMasker(inv);
  const unreachable = new Map<string, string>();
  const pending = new Map<string, Promise<Connection | undefined>>();
  for (const h of inv.hosts) {
    const target = hostTarget(h);
    target.connectTimeoutMs = Math.min(target.connectTimeoutMs, (opts.connectTimeoutSec ?? REACH_CONNECT_TIMEOUT_SEC) * 1000);
    pending.set(
      h.name,
      SshConnection.connect(target, { masker, onCommand: reporter.command }).catch((err: unknown) => {
        const msg = err instanceof HostError ? err.message.slice(h.name.length + 2) : String(err);
        unreachable.set(h.name, msg);
        return undefined;
      }),
    );
  }
  const all = async () => {
    const conns = new Map<string, Connection>();
    for (const [name, p] of pending) {
      const c = await p;
      if (c) conns.set(name, c);
    }
    return conns;
  };
  return {
    inv,
    pending,
    unreachable,
    session: async () => {
      const conns = await all();
      return sessionOver(inv, conns, { reporter, masker, missing: (name) => new HostError(name, unreachable.get(name) ?? 'not connected') });
    },
    close: async () => {
      const conns = await all();
      await Promise.all([...conns.values()].map((c) => c.close()));
    },
  };
}

/** Rejects after `ms` with `what` timed out; the question itself is abandoned (its channel dies with the session). */
export function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000}s`)), ms);
  });
  return Promise.race([p, expired]).finally(() => clearTimeout(timer));
}
