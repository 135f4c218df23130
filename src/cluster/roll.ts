// A rolling procedure over the database members, the way to change every PostgreSQL without a
// write outage beyond one switchover: the replicas one at a time, each back, streaming and caught
// up before the next (asynchronous replicas first, the synchronous standby last, so the
// synchronous role moves as little as possible); then a switchover to a caught-up replica that
// is done (in synchronous mode the synchronous standby: Patroni accepts no other); then the old
// leader, if its demotion did not already do the job. A member that does not come back stops the
// roll with the reason and leaves the rest untouched. `pgha restart`, `apply --restart-pending`
// and `pgha upgrade` are this with their own action per member.
import { PghaError } from '../errors.js';
import { Steps, waitFor } from '../engine/index.js';
import type { Inventory } from '../inventory/index.js';
import type { Session } from '../session/session.js';
import { sqlLocal } from '../session/remote.js';
import { candidateProblem } from '../components/patroni/checks.js';
import { isRunningState, lagOf, leaderOf, normalizeRole, type PatroniCluster, type PatroniMember } from '../components/patroni/cluster.js';
import { clusterView, planSwitchover, streamingFrom, switchoverNow } from './leader-change.js';

export interface RollPlan {
  /** Replicas to act on, in order. */
  replicas: string[];
  /**
   * The leader, when it is acted on too: after a switchover, or in place when no replica can take
   * over; `first` (the reason) when it must go in place before the replicas.
   */
  leader?: { name: string; switchover: boolean; first?: string };
  /** Whether the switchover must go to the synchronous standby. */
  synchronous: boolean;
}

const nofailover = (inv: Inventory, m: PatroniMember) => m.tags?.nofailover === true || inv.hosts.some((h) => h.name === m.name && h.tags.nofailover);

/**
 * The order (pure): `todo` are the members to act on. `leaderFirst` (why) puts the leader first, in
 * place: a lowered setting a replica may not run below its primary (see STANDBY_MINIMUM_SETTINGS).
 */
export function planRoll(inv: Inventory, cluster: PatroniCluster, todo: Set<string>, synchronous: boolean, leaderFirst?: string): RollPlan {
  const leader = leaderOf(cluster);
  const order = inv.hostsWithRole('postgres').map((h) => h.name);
  const rank = (name: string) => (order.includes(name) ? order.indexOf(name) : order.length);
  const replicas = cluster.members
    .filter((m) => m.name !== leader?.name && todo.has(m.name))
    .sort((a, b) => Number(normalizeRole(a.role) === 'sync_standby') - Number(normalizeRole(b.role) === 'sync_standby') || rank(a.name) - rank(b.name))
    .map((m) => m.name);
  const plan: RollPlan = { replicas, synchronous };
  if (leader && todo.has(leader.name)) {
    const canTakeOver = cluster.members.some((m) => m.name !== leader.name && !nofailover(inv, m));
    plan.leader = leaderFirst ? { name: leader.name, switchover: false, first: leaderFirst } : { name: leader.name, switchover: canTakeOver };
  }
  return plan;
}

/** The members a plan acts on, in order. */
export const rollMembers = (p: RollPlan) => (p.leader?.first ? [p.leader.name, ...p.replicas] : [...p.replicas, ...(p.leader ? [p.leader.name] : [])]);

/** The plan as numbered steps, for --check and before the run. `act`: "restart", "upgrade ..." */
export function describeRoll(p: RollPlan, act: (member: string) => string): string[] {
  const lines = p.replicas.map((r) => `${act(r)} (replica); wait until it streams from the leader and has caught up`);
  if (p.leader?.first) {
    lines.unshift(`${act(p.leader.name)} (the leader) in place first: ${p.leader.first}; writes fail while it restarts`);
  } else if (p.leader?.switchover) {
    lines.push(
      `switch over from ${p.leader.name} to ${p.synchronous ? 'the synchronous standby' : 'a caught-up replica'}` +
        `${p.replicas.length ? ' that is done' : ''} (writes pause for about 2 s)`,
      `${act(p.leader.name)} (the old leader, now a replica), unless its demotion already did; wait until it streams and has caught up`,
    );
  } else if (p.leader) {
    lines.push(`${act(p.leader.name)} (the leader) in place: no replica can take over (nofailover), so writes fail while it restarts`);
  }
  return lines.map((l, i) => `  ${i + 1}. ${l}`);
}

export interface RollAction {
  /** The step's title for a member: "restart node2", "upgrade node2 (postgresql-15 15.20-0+deb12u1)". */
  title(member: string): string;
  /** Acts on a member (a replica, the old leader after the switchover, or the leader in place). */
  act(member: string): Promise<void>;
  /** After act: a further condition for the member to count as back (true, or the reason not yet). */
  ready?(member: string): Promise<true | string>;
  /** The old leader after the switchover: whether act is still needed (a demotion restarts PostgreSQL). */
  stillNeeded?(member: string): Promise<boolean>;
}

export interface RollOptions {
  /** How long a member may take to come back, ms. */
  memberTimeoutMs: number;
}

const quote = (s: string) => `'${s.replace(/'/g, "''")}'`;

/**
 * A member is back: a running Patroni member; a replica streams from the leader and has replayed
 * everything the leader had written when it first streamed again (caught up); then `ready`.
 */
async function waitBack(session: Session, name: string, steps: Steps, ready: RollAction['ready'], timeoutMs: number): Promise<void> {
  let target: string | undefined;
  let streamingSeen = false;
  await waitFor(
    `${name} to stream again and catch up`,
    async () => {
      const cluster = await clusterView(session);
      const m = cluster.members.find((x) => x.name === name);
      if (!m) return `${name} is not a Patroni member right now`;
      if (!isRunningState(m.state)) return `${name} is ${m.state}`;
      const leader = leaderOf(cluster);
      if (!leader) return 'no running leader';
      if (leader.name !== name) {
        const conn = session.conns.get(leader.name);
        if (!conn) return `the leader ${leader.name} is not reachable`;
        const sql = `select json_build_object('lsn', pg_current_wal_lsn(), 'row', (select row_to_json(r) from (select state, replay_lsn >= ${quote(target ?? '0/0')}::pg_lsn as caught_up
          from pg_stat_replication where application_name = ${quote(name)}) r))`;
        const now = JSON.parse((await sqlLocal(session.inv, conn, sql)).stdout) as { lsn: string; row: { state: string; caught_up: boolean | null } | null };
        if (now.row?.state !== 'streaming') return `${name} does not stream from ${leader.name} yet`;
        if (!streamingSeen) {
          streamingSeen = true;
          target = now.lsn;
          steps.mark(`${name} streams from ${leader.name}`);
          return `${name} has to replay up to ${target}`;
        }
        if (!now.row.caught_up) return `${name} has not replayed up to ${target} yet`;
      }
      const extra = ready ? await ready(name) : true;
      if (extra !== true) return extra;
      steps.mark(leader.name === name ? `${name} runs as the leader again` : `${name} has caught up (replayed ${target})`);
      return true;
    },
    { timeoutMs, intervalMs: 500 },
  );
}

/** The switchover's candidate: the synchronous standby, or the done replica least behind. */
async function chooseCandidate(session: Session, done: Set<string>, synchronous: boolean, timeoutMs: number): Promise<string> {
  const { inv } = session;
  let chosen: string | undefined;
  await waitFor(
    synchronous ? 'a synchronous standby to switch over to' : 'a replica to switch over to',
    async () => {
      const cluster = await clusterView(session);
      const leader = leaderOf(cluster);
      if (!leader) return 'no running leader';
      const streaming = await streamingFrom(session, leader.name);
      const able = cluster.members.filter((m) => m.name !== leader.name && !candidateProblem(inv, m, streaming));
      if (synchronous) {
        const sync = able.find((m) => normalizeRole(m.role) === 'sync_standby');
        if (!sync) return `no synchronous standby that can take over yet (members: ${cluster.members.map((m) => `${m.name} ${m.role}`).join(', ')})`;
        chosen = sync.name;
        return true;
      }
      const lag = (m: PatroniMember) => lagOf(m, streaming) ?? Number.MAX_SAFE_INTEGER;
      const best = [...able].sort((a, b) => Number(done.has(b.name)) - Number(done.has(a.name)) || lag(a) - lag(b))[0];
      if (!best) return `no replica can take over: ${cluster.members.filter((m) => m.name !== leader.name).map((m) => candidateProblem(inv, m, streaming)?.message ?? m.name).join('; ')}`;
      chosen = best.name;
      return true;
    },
    { timeoutMs, intervalMs: 1000 },
  );
  return chosen!;
}

/** What a failed roll left: the step that failed, why, and which members were not touched. */
function rollStopped(step: string, err: unknown, untouched: string[]): PghaError {
  const msg = err instanceof Error ? err.message : String(err);
  const left = untouched.length ? `not touched: ${untouched.join(', ')}` : 'no member was left to do';
  return new PghaError(`${step} failed: ${msg}\nThe roll stopped there; ${left}.`);
}

export interface RollResult {
  /** The leader before and after (equal when there was no switchover). */
  leaderBefore?: string;
  leaderAfter?: string;
  /** The members acted on. */
  done: string[];
}

/** Carries out a plan, printing each step with its time (steps). */
export async function runRoll(session: Session, plan: RollPlan, action: RollAction, steps: Steps, opts: RollOptions): Promise<RollResult> {
  const done = new Set<string>();
  const untouched = rollMembers(plan);
  const result: RollResult = { leaderBefore: plan.leader?.name, leaderAfter: plan.leader?.name, done: [] };
  const run = async (title: string, fn: () => Promise<void>) => {
    try {
      await steps.step(title, fn);
    } catch (err) {
      throw rollStopped(title, err, untouched);
    }
  };
  const onMember = async (name: string) => {
    // After the leader's restart in place: a replica restarts with a lowered setting only once it
    // has replayed the primary's record of it (Patroni starts it with what its control file says).
    if (plan.leader?.first && name !== plan.leader.name) await waitBack(session, name, steps, undefined, opts.memberTimeoutMs);
    untouched.splice(untouched.indexOf(name), 1);
    await action.act(name);
    await waitBack(session, name, steps, (m) => action.ready?.(m) ?? Promise.resolve(true), opts.memberTimeoutMs);
    done.add(name);
    result.done.push(name);
  };
  const leader = plan.leader;
  if (leader?.first) await run(`${action.title(leader.name)} (the leader, in place)`, () => onMember(leader.name));
  for (const name of plan.replicas) {
    await run(`${action.title(name)} (replica)`, async () => {
      // The cluster may have changed since the plan (a failover): never act on a leader here.
      const now = leaderOf(await clusterView(session));
      if (now?.name === name) throw new PghaError(`${name} leads now (the leader changed since the plan)`);
      await onMember(name);
    });
  }
  if (!leader || leader.first) return result;
  if (!leader.switchover) {
    await run(`${action.title(leader.name)} (the leader, in place)`, () => onMember(leader.name));
    return result;
  }
  await run(`switch over from ${leader.name}`, async () => {
    const candidate = await chooseCandidate(session, done, plan.synchronous, opts.memberTimeoutMs);
    steps.mark(`${candidate} takes over`, plan.synchronous ? 'the synchronous standby' : undefined);
    const sw = await planSwitchover(session, candidate);
    if (sw.leader.name !== leader.name) throw new PghaError(`${sw.leader.name} leads now, not ${leader.name} (the leader changed since the plan)`);
    result.leaderAfter = await switchoverNow(session, sw, candidate, steps, opts.memberTimeoutMs);
  });
  const needed = action.stillNeeded ? await action.stillNeeded(leader.name) : true;
  if (!needed) {
    untouched.splice(untouched.indexOf(leader.name), 1);
    steps.say(`  ${leader.name}: its demotion restarted PostgreSQL: nothing left to do there`);
    done.add(leader.name);
    result.done.push(leader.name);
    return result;
  }
  await run(`${action.title(leader.name)} (the old leader)`, () => onMember(leader.name));
  return result;
}
