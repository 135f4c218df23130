// Patroni's view of the cluster (facts: its REST API asked on a database host, plus pure parsers)
// and the ONE definition of who leads, of replication state, and the health gates built on them.
import type { Host, Inventory } from '../../inventory/index.js';
import type { Connection } from '../../ssh/index.js';
import type { Session } from '../../session/session.js';
import { httpFrom, RemoteError, sqlLocal, type HttpResult } from '../../session/remote.js';
import { restapiUrl } from './paths.js';

export type PatroniRole = 'leader' | 'replica' | 'sync_standby' | 'standby_leader';

/** One member as Patroni's GET /cluster reports it (3.0.2 and later spellings). */
export interface PatroniMember {
  name: string;
  role: string;
  state: string;
  host?: string;
  port?: number;
  timeline?: number;
  lag?: number | 'unknown';
  pending_restart?: boolean;
  tags?: Record<string, unknown>;
}

export interface PatroniCluster {
  members: PatroniMember[];
  pause?: boolean;
  scheduled_switchover?: { at: string; from?: string; to?: string };
}

/** A member's own GET /patroni: answered from its local state, without the DCS. */
export interface PatroniSelf {
  state: string;
  role: string;
  timeline?: number;
  xlog?: { location?: number; received_location?: number; replayed_location?: number; paused?: boolean };
  pending_restart?: boolean;
  tags?: Record<string, unknown>;
  pause?: boolean;
  postmaster_start_time?: string;
  /** Patroni itself: {"version": "4.0.7", "scope": "lab", ...}. */
  patroni?: { version?: string };
}

/** Patroni 3.0.2's "master" and 4.x's "primary" are both "leader". */
export function normalizeRole(raw: string): PatroniRole {
  if (raw === 'leader' || raw === 'master' || raw === 'primary') return 'leader';
  if (raw === 'standby_leader' || raw === 'sync_standby') return raw;
  return 'replica';
}

/** Running PostgreSQL: 3.0.2 says "running" for every member, 3.0.4+ "streaming" for replicas. */
export const isRunningState = (state: string) => state === 'running' || state === 'streaming';

export const isLeaderRole = (role: string) => {
  const r = normalizeRole(role);
  return r === 'leader' || r === 'standby_leader';
};

/** THE leader: the member with the leader role whose PostgreSQL runs. */
export function leaderOf(c: PatroniCluster): PatroniMember | undefined {
  return c.members.find((m) => isLeaderRole(m.role) && isRunningState(m.state));
}

/** Pure: the cluster view in `h`'s answer to GET /cluster. */
export function clusterAnswer(h: Host, r: HttpResult): PatroniCluster {
  if (r.status !== 200) throw new RemoteError(`Patroni on ${h.name} answered ${r.status} to GET /cluster`);
  return JSON.parse(r.body) as PatroniCluster;
}

/** Pure: the member's own state in an answer to GET /patroni (a 503 still carries it, e.g. stopped PostgreSQL). */
export function selfAnswer(r: HttpResult): PatroniSelf {
  return JSON.parse(r.body) as PatroniSelf;
}

/** GET /cluster from the Patroni of `h`, asked on that host itself. */
export async function patroniCluster(inv: Inventory, conn: Connection, h: Host): Promise<PatroniCluster> {
  return clusterAnswer(h, await httpFrom(conn, 'GET', restapiUrl(inv, h, '/cluster')));
}

/** GET /patroni of `h`. */
export async function patroniSelf(inv: Inventory, conn: Connection, h: Host): Promise<PatroniSelf> {
  return selfAnswer(await httpFrom(conn, 'GET', restapiUrl(inv, h, '/patroni')));
}

/** The first answer of GET /cluster from the connected postgres hosts, in order; null when none answers. */
export async function anyPatroniCluster(session: Session): Promise<{ from: Host; cluster: PatroniCluster } | null> {
  for (const h of session.inv.hostsWithRole('postgres')) {
    const c = session.conns.get(h.name);
    if (!c) continue;
    try {
      return { from: h, cluster: await patroniCluster(session.inv, c, h) };
    } catch {
      // try the next member
    }
  }
  return null;
}

/** The running leader as the cluster reports it now, or undefined. */
export async function currentLeader(session: Session): Promise<PatroniMember | undefined> {
  const found = await anyPatroniCluster(session);
  return found ? leaderOf(found.cluster) : undefined;
}

// ---------------------------------------------------------------- replication

/** One row of pg_stat_replication on the leader: who streams, in which sync state, how far behind. */
export interface ReplicaState {
  name: string;
  state: string;
  sync_state: string;
  /** Bytes between the leader's current WAL position and the replica's replay position. */
  lag_bytes: number | null;
  /** Bytes the replica has not yet flushed (what maximum_lag_on_failover is about: Patroni compares
   * received WAL). Fresh: a replica answers after every flush, while its replay position may be
   * reported only every wal_receiver_status_interval. */
  received_lag_bytes?: number | null;
}

/** THE replication query (a json array), also embedded in status's one-round-trip question. */
export const REPLICATION_SQL = `(select coalesce(json_agg(json_build_object('name', application_name, 'state', state, 'sync_state', sync_state,
  'lag_bytes', pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint,
  'received_lag_bytes', pg_wal_lsn_diff(pg_current_wal_lsn(), flush_lsn)::bigint)), '[]') from pg_stat_replication)`;

/** pg_stat_replication on the leader, asked locally (lag measured now: Patroni's own figure is loop_wait old). */
export async function replicationState(inv: Inventory, leaderConn: Connection): Promise<ReplicaState[]> {
  return JSON.parse((await sqlLocal(inv, leaderConn, `select ${REPLICATION_SQL}`)).stdout) as ReplicaState[];
}

/** Members the leader sees streaming, each with its flush lag measured now (null: not known). */
export type Streaming = ReadonlyMap<string, number | null>;

export const streamingReplicas = (rows: ReplicaState[]): Streaming =>
  new Map(rows.filter((r) => r.state === 'streaming').map((r) => [r.name, r.received_lag_bytes ?? null]));

/**
 * A replica's lag in bytes: the leader's pg_stat_replication measured now (`live`, e.g. a
 * Streaming) when it is known, else Patroni's figure. Patroni's is up to loop_wait old on both
 * sides (the leader's position in the DCS, the member's in its key): right after a WAL segment
 * switch on a quiet leader it shows every replica a segment (16 MiB) behind although they have it all.
 */
export function lagOf(m: PatroniMember, live?: ReadonlyMap<string, number | null>): number | undefined {
  const now = live?.get(m.name);
  if (typeof now === 'number') return now;
  return typeof m.lag === 'number' ? m.lag : undefined;
}

// ---------------------------------------------------------------- gates

export async function patroniHasLeader(session: Session): Promise<true | string> {
  const found = await anyPatroniCluster(session);
  if (!found) return 'no Patroni REST API answers yet';
  return leaderOf(found.cluster) ? true : `members: ${found.cluster.members.map((m) => `${m.name} ${m.role} ${m.state}`).join(', ') || 'none yet'}`;
}

/** Every postgres host is a running member; every non-leader streams from the leader within the lag limit. */
export async function membersStreaming(session: Session): Promise<true | string> {
  const { inv, conns } = session;
  const found = await anyPatroniCluster(session);
  if (!found) return 'no Patroni REST API answers';
  const leader = leaderOf(found.cluster);
  if (!leader) return 'no leader';
  const leaderConn = conns.get(leader.name);
  if (!leaderConn) return `leader ${leader.name} is not a connected inventory host`;
  const rows = (await replicationState(inv, leaderConn)).filter((r) => r.state === 'streaming');
  const problems: string[] = [];
  for (const h of inv.hostsWithRole('postgres')) {
    const m = found.cluster.members.find((x) => x.name === h.name);
    if (!m) problems.push(`${h.name} is not a member yet`);
    else if (!isRunningState(m.state)) problems.push(`${h.name} is ${m.state}`);
    else if (m.name !== leader.name) {
      const row = rows.find((r) => r.name === m.name);
      if (!row) problems.push(`${h.name} does not stream from ${leader.name} yet`);
      else if ((row.lag_bytes ?? 0) > inv.patroni.maximum_lag_on_failover) problems.push(`${h.name} lags ${row.lag_bytes} bytes behind ${leader.name}`);
    }
  }
  return problems.length ? problems.join('; ') : true;
}
