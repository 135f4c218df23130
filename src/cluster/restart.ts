// The rolling restart runbook (`pgha restart`, `pgha apply --restart-pending`): the members Patroni
// marks pending_restart (or every member), restarted through Patroni's POST /restart in the roll's
// order: replicas, a switchover, the old leader (whose demotion restarts it already).
import { PghaError } from '../errors.js';
import { Steps, waitFor } from '../engine/index.js';
import type { Session } from '../session/session.js';
import { leaderOf, isRunningState, patroniSelf, type PatroniCluster } from '../components/patroni/cluster.js';
import { liveDynamicConfig, loweredStandbyMinimums, type Json } from '../components/patroni/config.js';
import { requestRestart } from '../components/patroni/actions.js';
import { clusterView } from './leader-change.js';
import { describeRoll, planRoll, runRoll, type RollAction, type RollPlan, type RollResult } from './roll.js';
import { DEFAULT_MAX_TRANSACTION_AGE_SEC, gatherPreflight, preflightFailure, preflightProblems } from './preflight.js';

/** Default of --timeout: how long a member may take to come back, streaming and caught up. */
export const DEFAULT_MEMBER_TIMEOUT_SEC = 300;

/** synchronous_mode as Patroni runs it (the live dynamic configuration); the inventory's when it cannot be asked. */
export async function liveSynchronousMode(session: Session, cluster: PatroniCluster): Promise<boolean> {
  const leader = leaderOf(cluster);
  const conn = leader && session.conns.get(leader.name);
  if (!leader || !conn) return session.inv.patroni.synchronous_mode;
  return liveDynamicConfig(session.inv, conn, session.inv.host(leader.name)).then(
    (cfg) => cfg.synchronous_mode === true,
    () => session.inv.patroni.synchronous_mode,
  );
}

export interface RestartPlan {
  plan: RollPlan;
  /** The members restarted, by name (pending ones, or all with `all`). */
  todo: string[];
}

/**
 * Which members to restart and in what order. A lowered setting that a replica may not run below
 * its primary (max_connections 300 -> 200) takes effect only once the primary runs with it: then
 * the leader goes first, in place, and the plan says writes fail meanwhile.
 */
export async function planRestart(
  session: Session,
  opts: { all?: boolean; /** apply --check: members to restart once the change is made, and its parameters */ after?: { members: string[]; parameters: Record<string, Json> } },
): Promise<RestartPlan> {
  const { inv } = session;
  const cluster = await clusterView(session);
  const todo = opts.after?.members ?? cluster.members.filter((m) => opts.all || m.pending_restart === true).map((m) => m.name);
  const leader = leaderOf(cluster);
  let first: string | undefined;
  if (leader && todo.includes(leader.name) && session.conns.has(leader.name)) {
    const lowered = await loweredStandbyMinimums(inv, session.conn(leader.name), inv.host(leader.name), opts.after?.parameters);
    if (lowered.length) {
      first =
        `${lowered.map((l) => `${l.name} goes down (${l.running} -> ${l.wanted})`).join(', ')}, and a replica cannot run ` +
        'with less than its primary (Patroni keeps it at the primary\'s value), so the primary restarts with it first';
    }
  }
  return { plan: planRoll(inv, cluster, new Set(todo), await liveSynchronousMode(session, cluster), first), todo };
}

/** Patroni's own word on a member, live (GET /patroni; the DCS copy lags a loop): a restart is still pending. */
async function stillPending(session: Session, member: string): Promise<boolean> {
  const from = session.conns.get(member) ?? session.withRole('postgres')[0];
  return (await patroniSelf(session.inv, from, session.inv.host(member))).pending_restart === true;
}

/** What a rolling restart does to each member. */
export function restartAction(session: Session, opts: { all?: boolean; timeoutSec: number; steps: Steps }): RollAction {
  const { inv } = session;
  return {
    title: (m) => `restart ${m}`,
    async act(m) {
      const from = session.conns.get(m) ?? session.withRole('postgres')[0];
      const r = await requestRestart(inv, from, inv.host(m), { timeoutSec: opts.timeoutSec, pendingOnly: !opts.all });
      // Its restart became unnecessary in the meantime (someone restarted it): nothing to do.
      if (!opts.all && r.status === 503 && /conditions are not satisfied/.test(r.body)) {
        opts.steps.mark(`${m}: no restart pending any more (Patroni: ${r.body.trim()})`);
        return;
      }
      if (r.status !== 200) throw new PghaError(`Patroni on ${m} answered ${r.status} to POST /restart: ${r.body.trim() || '(no body)'}`);
      opts.steps.mark(`Patroni restarted PostgreSQL on ${m}`, r.body.trim());
    },
    async ready(m) {
      if (opts.all) return true;
      return (await stillPending(session, m)) ? `Patroni still marks ${m} pending_restart after its restart` : true;
    },
    // The switchover's demotion stopped and started the old leader's PostgreSQL.
    async stillNeeded(m) {
      return opts.all ? false : stillPending(session, m);
    },
  };
}

/** Runs a restart plan (see roll.ts). */
export function runRestart(session: Session, rp: RestartPlan, steps: Steps, opts: { all?: boolean; timeoutSec: number }): Promise<RollResult> {
  return runRoll(session, rp.plan, restartAction(session, { ...opts, steps }), steps, { memberTimeoutMs: opts.timeoutSec * 1000 });
}

/**
 * After a PATCH /config that changed settings needing a restart: every member takes the new
 * configuration at its next loop and Patroni then marks it pending_restart. Waits (bounded by a
 * few loops) until each running member is marked, so the restart that follows finds them all.
 */
export async function waitForPendingFlags(session: Session): Promise<void> {
  const loop = session.inv.timing.patroni.loop_wait;
  await waitFor(
    'Patroni to mark the members pending_restart',
    async () => {
      const c = await clusterView(session);
      const not = c.members.filter((m) => isRunningState(m.state) && m.pending_restart !== true).map((m) => m.name);
      return not.length ? `not marked yet: ${not.join(', ')}` : true;
    },
    { timeoutMs: (loop * 3 + 10) * 1000, intervalMs: 500 },
  ).catch(() => {
    // A member whose running value is the new one already is never marked: restart the marked ones.
  });
}

export interface RestartAfterApplyOptions {
  check?: boolean;
  /** The parameters needing a restart that this apply changed (or would change). */
  changed: string[];
  /** The PostgreSQL parameters apply wants, for the plan in check mode (nothing is patched yet). */
  wantedParameters(leader: string): Record<string, Json>;
  timeoutSec?: number;
  maxTransactionAgeSec?: number;
}

/**
 * `apply --restart-pending`: after apply's stages, the members with a pending restart restarted
 * as `pgha restart` does, behind the same preflight; in check mode, the order it would take
 * (every member, when this run's change is what needs the restart).
 */
export async function restartPendingAfterApply(session: Session, out: (text: string) => void, o: RestartAfterApplyOptions): Promise<void> {
  const { inv } = session;
  const act = (m: string) => `restart ${m}`;
  if (o.check) {
    const cluster = await clusterView(session);
    const leader = leaderOf(cluster);
    const after = o.changed.length && leader ? { members: cluster.members.map((m) => m.name), parameters: o.wantedParameters(leader.name) } : undefined;
    const rp = await planRestart(session, { after });
    if (!rp.todo.length) return out('restart pending: nothing to restart\n');
    return out(`restart pending${o.changed.length ? ` (${o.changed.join(', ')})` : ''}: would restart ${rp.todo.join(', ')}:\n${describeRoll(rp.plan, act).join('\n')}\n`);
  }
  if (o.changed.length) await waitForPendingFlags(session);
  const rp = await planRestart(session, {});
  if (!rp.todo.length) return out('restart pending: nothing to restart\n');
  out(`restart pending on ${rp.todo.join(', ')}:\n${describeRoll(rp.plan, act).join('\n')}\n`);
  const limits = { maxLagBytes: inv.patroni.maximum_lag_on_failover, maxTransactionAgeSec: o.maxTransactionAgeSec ?? DEFAULT_MAX_TRANSACTION_AGE_SEC, backups: false };
  const problems = preflightProblems(await gatherPreflight(session, limits), limits);
  if (problems.length) throw preflightFailure('restart pending', problems, 'the changes above are applied; no member was restarted');
  const steps = new Steps(out);
  const res = await runRestart(session, rp, steps, { timeoutSec: o.timeoutSec ?? DEFAULT_MEMBER_TIMEOUT_SEC });
  out(`restart pending done in ${(steps.elapsedMs() / 1000).toFixed(1)}s: ${res.done.join(', ')}${res.leaderAfter !== res.leaderBefore ? `; leader ${res.leaderBefore} -> ${res.leaderAfter}` : ''}\n`);
}
