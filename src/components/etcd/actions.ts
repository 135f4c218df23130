// etcd's runbook actions: a member restarted (one at a time, the cluster healthy before the
// next), and a member's peer URL changed in the cluster's membership.
import { waitFor } from '../../engine/index.js';
import { PghaError } from '../../errors.js';
import type { Inventory } from '../../inventory/index.js';
import type { Session } from '../../session/session.js';
import type { Connection } from '../../ssh/index.js';
import type { Reporter } from '../../engine/index.js';
import { etcdctl, etcdctlAs, etcdctlTlsFlags } from './endpoints.js';
import { etcdProblem, etcdState } from './state.js';

/** Every member healthy with one leader, asked on `from` with `inv`'s way of speaking to etcd. */
export async function etcdHealthy(inv: Inventory, from: Connection): Promise<true | string> {
  return etcdProblem(await etcdState(inv, from));
}

/**
 * Restarts etcd on `members` one at a time (a member that is not running is left alone): after
 * each, every member must be healthy again before the next, so quorum is never at stake.
 * `inv` says how to speak to etcd afterwards (while a cluster moves to TLS it changes).
 */
export async function restartMembersOneByOne(session: Session, members: string[], opts: { inv?: Inventory; reporter?: Reporter; why: string }): Promise<void> {
  const inv = opts.inv ?? session.inv;
  // The etcd leader last: one leader election instead of several.
  const states = await etcdState(inv, session.conn(members[0])).catch(() => []);
  const leader = states.find((s) => s.leader)?.name;
  const ordered = [...members.filter((m) => m !== leader), ...members.filter((m) => m === leader)];
  for (const name of ordered) {
    const conn = session.conn(name);
    const active = await conn.run(['systemctl', 'is-active', '--quiet', 'etcd'], { check: false });
    if (active.code !== 0) continue;
    opts.reporter?.progress(name, `restarting etcd (${opts.why})`);
    await conn.run(['systemctl', 'restart', 'etcd'], { timeoutMs: 120_000 });
    await waitFor(`etcd healthy after restarting ${name}`, () => etcdHealthy(inv, conn), { timeoutMs: 120_000, intervalMs: 1000, reporter: opts.reporter });
  }
}

export interface EtcdMember {
  id: string;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
}

/** The cluster's membership (`etcdctl member list`), asked on `from`. */
export async function memberList(inv: Inventory, from: Connection): Promise<EtcdMember[]> {
  const r = await from.run(etcdctl(inv, 'member', 'list', '-w', 'json'), { ...etcdctlAs(inv), check: false, timeoutMs: 15_000 });
  if (r.code !== 0) throw new PghaError(`${from.target.name}: etcdctl member list failed: ${r.stderr.trim().split('\n').pop()}`);
  // 64-bit ids: as text, JSON numbers would lose digits.
  const json = JSON.parse(r.stdout.replace(/"ID":(\d+)/g, '"ID":"$1"')) as { members?: { ID: string; name: string; peerURLs?: string[]; clientURLs?: string[] }[] };
  return (json.members ?? []).map((m) => ({ id: BigInt(m.ID).toString(16), name: m.name, peerURLs: m.peerURLs ?? [], clientURLs: m.clientURLs ?? [] }));
}

/** `etcdctl member update`: the member's peer URL as the cluster knows it (it takes effect for the others at once). */
export async function updatePeerUrl(inv: Inventory, from: Connection, member: EtcdMember, peerUrl: string): Promise<void> {
  await from.run(etcdctl(inv, 'member', 'update', member.id, `--peer-urls=${peerUrl}`), { ...etcdctlAs(inv), timeoutMs: 30_000 });
}

/**
 * Each member asked on its own endpoint (`endpoints`: name -> URL, http or https per member), with
 * the member's client certificate: while a cluster moves to TLS its members speak differently,
 * and etcdctl dials every endpoint of one call the same way (and a port answering both ways
 * serves gRPC over TLS only). The certificates are on the hosts before the move starts.
 */
export async function etcdHealthyEach(inv: Inventory, from: Connection, endpoints: Map<string, string>): Promise<true | string> {
  const tls = { ...inv, tls: { ...inv.tls, enabled: true } };
  const sick: string[] = [];
  await Promise.all(
    [...endpoints].map(async ([name, ep]) => {
      const r = await from.run(['env', 'ETCDCTL_API=3', 'etcdctl', '--dial-timeout=2s', '--command-timeout=3s', `--endpoints=${ep}`, ...etcdctlTlsFlags(tls), 'endpoint', 'health'], {
        ...etcdctlAs(tls),
        check: false,
        timeoutMs: 15_000,
      });
      if (r.code !== 0) sick.push(`${name}: ${(r.stderr || r.stdout).trim().split('\n').pop()}`);
    }),
  );
  return sick.length ? `unhealthy member(s): ${sick.sort().join('; ')}` : true;
}

/** `etcdctl member list` on one endpoint (http or https), with the member's client certificate. */
export async function memberListAt(inv: Inventory, from: Connection, endpoint: string): Promise<EtcdMember[]> {
  const tls = { ...inv, tls: { ...inv.tls, enabled: true } };
  const r = await from.run(['env', 'ETCDCTL_API=3', 'etcdctl', '--dial-timeout=2s', '--command-timeout=3s', `--endpoints=${endpoint}`, ...etcdctlTlsFlags(tls), 'member', 'list', '-w', 'json'], {
    ...etcdctlAs(tls),
    check: false,
    timeoutMs: 15_000,
  });
  if (r.code !== 0) throw new PghaError(`${from.target.name}: etcdctl member list failed: ${r.stderr.trim().split('\n').pop()}`);
  const json = JSON.parse(r.stdout.replace(/"ID":(\d+)/g, '"ID":"$1"')) as { members?: { ID: string; name: string; peerURLs?: string[]; clientURLs?: string[] }[] };
  return (json.members ?? []).map((m) => ({ id: BigInt(m.ID).toString(16), name: m.name, peerURLs: m.peerURLs ?? [], clientURLs: m.clientURLs ?? [] }));
}

/** `etcdctl member update` on one endpoint, with the member's client certificate. */
export async function updatePeerUrlAt(inv: Inventory, from: Connection, endpoint: string, member: EtcdMember, peerUrl: string): Promise<void> {
  const tls = { ...inv, tls: { ...inv.tls, enabled: true } };
  await from.run(['env', 'ETCDCTL_API=3', 'etcdctl', '--dial-timeout=2s', '--command-timeout=3s', `--endpoints=${endpoint}`, ...etcdctlTlsFlags(tls), 'member', 'update', member.id, `--peer-urls=${peerUrl}`], {
    ...etcdctlAs(tls),
    timeoutMs: 30_000,
  });
}
