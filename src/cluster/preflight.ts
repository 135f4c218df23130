// The checks before a rolling restart or an upgrade touches anything: a running leader, every
// member running and streaming within maximum_lag_on_failover with its WAL replay not paused, no
// transaction older than a threshold (a restart or switchover would cut it off), a synchronous
// standby when synchronous mode is on, etcd healthy and, for an upgrade, the last backup and WAL
// archiving healthy. Every problem names the member (or part) and the reason; gathering is one
// question per host, the verdict a pure function.
import { EXIT, PghaError } from '../errors.js';
import type { Session } from '../session/session.js';
import type { Connection } from '../ssh/index.js';
import { sqlLocal } from '../session/remote.js';
import { etcdReady } from '../components/etcd/state.js';
import { isRunningState, leaderOf, normalizeRole, replicationState, type PatroniCluster, type ReplicaState } from '../components/patroni/cluster.js';
import { liveDynamicConfig } from '../components/patroni/config.js';
import { ARCHIVER_SQL, archivingFails, type ArchiverStats, type StanzaInfo } from '../components/pgbackrest/info.js';
import { stanzaInfo } from '../components/pgbackrest/runner.js';
import { clusterView } from './leader-change.js';

/** Default of --max-transaction-age: a transaction open longer is cut off by a restart or switchover. */
export const DEFAULT_MAX_TRANSACTION_AGE_SEC = 60;

export interface PreflightOptions {
  /** Bytes a replica may lag (the inventory's maximum_lag_on_failover). */
  maxLagBytes: number;
  maxTransactionAgeSec: number;
  /** Check the last backup and WAL archiving too (an upgrade). */
  backups: boolean;
}

/** What one database host's PostgreSQL says (asked locally). */
export interface MemberState {
  /** A replica's WAL replay is paused (pg_wal_replay_pause()). */
  replayPaused: boolean;
  /** The oldest open transaction of a client, or null. */
  oldest: { pid: number; user: string | null; state: string | null; age: number } | null;
}

export interface PreflightInput {
  /** The inventory's database hosts. */
  postgres: string[];
  cluster: PatroniCluster;
  /** synchronous_mode as Patroni runs it (the live dynamic configuration). */
  synchronousMode: boolean;
  /** The leader's pg_stat_replication (null: it could not be asked). */
  replication: ReplicaState[] | null;
  members: Record<string, MemberState | { error: string }>;
  etcd: true | string;
  backups?: { info: StanzaInfo | { error: string }; archiver: (ArchiverStats & { last_failed_wal: string | null }) | { error: string } };
}

const mib = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MiB`;

/** Every reason not to go ahead (empty: go ahead). Each line is "NAME: reason". */
export function preflightProblems(inp: PreflightInput, o: PreflightOptions): string[] {
  const out: string[] = [];
  const c = inp.cluster;
  const leader = leaderOf(c);
  if (!leader) out.push('cluster: no running leader (pgha failover --candidate NAME promotes one)');
  if (c.pause) out.push('cluster: paused (maintenance mode): resume it first (patronictl resume)');
  if (c.scheduled_switchover) out.push(`cluster: a switchover is scheduled at ${c.scheduled_switchover.at}: cancel it first (patronictl flush CLUSTER switchover)`);
  if (inp.etcd !== true) out.push(`etcd: ${inp.etcd}`);
  const streaming = new Map((inp.replication ?? []).filter((r) => r.state === 'streaming').map((r) => [r.name, r]));
  for (const name of inp.postgres) {
    const m = c.members.find((x) => x.name === name);
    const local = inp.members[name];
    if (!m) {
      out.push(`${name}: not a Patroni member (is Patroni running there?)`);
      continue;
    }
    if (!isRunningState(m.state)) {
      out.push(`${name}: ${m.state}, not running`);
      continue;
    }
    if (local && 'error' in local) out.push(`${name}: PostgreSQL could not be asked: ${local.error}`);
    if (leader && name !== leader.name) {
      const row = streaming.get(name);
      if (inp.replication === null) {
        // said once, for the leader, below
      } else if (!row) out.push(`${name}: does not stream from the leader ${leader.name}`);
      // Replayed WAL: a replica that received but has not replayed must catch up before the roll's switchover can use it.
      else if (row.lag_bytes === null) out.push(`${name}: its replication lag is unknown`);
      else if (row.lag_bytes > o.maxLagBytes) out.push(`${name}: lags ${mib(row.lag_bytes)} behind ${leader.name}, more than maximum_lag_on_failover (${mib(o.maxLagBytes)})`);
      if (local && !('error' in local) && local.replayPaused) out.push(`${name}: its WAL replay is paused (select pg_wal_replay_resume() on ${name} resumes it)`);
    }
    if (local && !('error' in local) && local.oldest && local.oldest.age > o.maxTransactionAgeSec) {
      const t = local.oldest;
      out.push(
        `${name}: a transaction has been open for ${t.age} s (pid ${t.pid}${t.user ? `, user ${t.user}` : ''}${t.state ? `, ${t.state}` : ''}), ` +
          `more than ${o.maxTransactionAgeSec} s: a restart or switchover would cut it off (end it, or raise --max-transaction-age)`,
      );
    }
  }
  if (leader && inp.replication === null) out.push(`${leader.name}: pg_stat_replication could not be read on the leader`);
  if (leader && inp.synchronousMode) {
    const sync = c.members.filter((m) => normalizeRole(m.role) === 'sync_standby' && isRunningState(m.state));
    const syncRows = (inp.replication ?? []).filter((r) => r.sync_state === 'sync' && r.state === 'streaming');
    if (sync.length === 0 || syncRows.length === 0) {
      out.push('cluster: synchronous_mode is on but no member is a synchronous standby right now: a switchover needs one (wait until Patroni has picked one)');
    }
  }
  if (o.backups && inp.backups) {
    const { info, archiver } = inp.backups;
    if ('error' in info) out.push(`pgbackrest: the repository could not be asked: ${info.error}`);
    else if (info.code !== 0) out.push(`pgbackrest: stanza ${info.stanza} status ${info.code}: ${info.message}`);
    else if (info.backups.length === 0) out.push(`pgbackrest: no backup in the repository: take one first (pgha backup)`);
    else if (info.backups.at(-1)!.error) out.push(`pgbackrest: the last backup, ${info.backups.at(-1)!.label}, has errors: take a new one first (pgha backup)`);
    if ('error' in archiver) out.push(`${leader?.name ?? 'leader'}: WAL archiving state unknown: ${archiver.error}`);
    else if (archivingFails(archiver)) {
      out.push(`${leader?.name ?? 'leader'}: WAL archiving fails: last failure ${archiver.last_failed_wal ?? '?'} at ${archiver.last_failed_time} (${archiver.failed_count} failures)`);
    }
  }
  return out;
}

const MEMBER_SQL = `select json_build_object(
  'replayPaused', case when pg_is_in_recovery() then pg_is_wal_replay_paused() else false end,
  'oldest', (select row_to_json(t) from (select pid, usename as user, state, extract(epoch from now() - xact_start)::int as age
             from pg_stat_activity where xact_start is not null and backend_type = 'client backend' and pid <> pg_backend_pid()
             order by xact_start limit 1) t))`;

const message = (err: unknown) => (err instanceof Error ? err.message : String(err)).split('\n')[0];

/** Asks everything the checks need, from the hosts, at once. */
export async function gatherPreflight(session: Session, o: PreflightOptions): Promise<PreflightInput> {
  const { inv } = session;
  const cluster = await clusterView(session);
  const leader = leaderOf(cluster);
  const leaderConn = leader ? session.conns.get(leader.name) : undefined;
  const postgres = inv.hostsWithRole('postgres').map((h) => h.name);
  const [members, replication, etcd, synchronousMode, backups] = await Promise.all([
    Promise.all(
      postgres.map(async (name): Promise<[string, MemberState | { error: string }]> => {
        const conn = session.conns.get(name);
        if (!conn) return [name, { error: `unreachable: ${session.unreachable.get(name) ?? ''}` }];
        try {
          return [name, JSON.parse((await sqlLocal(inv, conn, MEMBER_SQL)).stdout) as MemberState];
        } catch (err) {
          return [name, { error: message(err) }];
        }
      }),
    ),
    leaderConn ? replicationState(inv, leaderConn).catch(() => null) : Promise.resolve(null),
    session.withRole('etcd').length ? etcdReady(session).catch((err: unknown) => message(err)) : Promise.resolve('no etcd host is reachable'),
    leaderConn ? liveDynamicConfig(inv, leaderConn, inv.host(leader!.name)).then((cfg) => cfg.synchronous_mode === true, () => inv.patroni.synchronous_mode) : Promise.resolve(inv.patroni.synchronous_mode),
    o.backups ? gatherBackups(session, leaderConn) : Promise.resolve(undefined),
  ]);
  return { postgres, cluster, synchronousMode, replication, members: Object.fromEntries(members), etcd, ...(backups ? { backups } : {}) };
}

async function gatherBackups(session: Session, leaderConn: Connection | undefined): Promise<NonNullable<PreflightInput['backups']>> {
  const [info, archiver] = await Promise.all([
    stanzaInfo(session).catch((err: unknown) => ({ error: message(err) })),
    leaderConn
      ? sqlLocal(session.inv, leaderConn, `select ${ARCHIVER_SQL}`).then(
          (r) => JSON.parse(r.stdout) as ArchiverStats & { last_failed_wal: string | null },
          (err: unknown) => ({ error: message(err) }),
        )
      : Promise.resolve({ error: 'no leader to ask' }),
  ]);
  return { info, archiver };
}

/** The refusal when problems were found: nothing was changed. */
export function preflightFailure(what: string, problems: string[], state = 'nothing was changed'): PghaError {
  return new PghaError(`${what}: preflight failed, ${state}:`, EXIT.failed, problems.map((p) => `  ${p}`));
}
