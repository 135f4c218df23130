// The rolling restart runbook (`pgha restart`, `pgha apply --restart-pending`): the members Patroni
// marks pending_restart (or every member), restarted through Patroni's POST /restart in the roll's
// order: replicas, a switchover, the old leader (whose demotion restarts it already).
import { PghaError } from '../errors.js';
import { waitFor, type Steps } from '../engine/index.js';
import type { Session } from '../session/session.js';
import { sqlLocal } from '../session/remote.js';
import { leaderOf, isRunningState, type PatroniCluster } from '../components/patroni/cluster.js';
import { liveDynamicConfig } from '../components/patroni/config.js';
import { requestRestart } from '../components/patroni/actions.js';
import { clusterView } from './leader-change.js';
import { planRoll, runRoll, type RollAction, type RollPlan, type RollResult } from './roll.js';

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

/** Which members to restart and in what order. */
export async function planRestart(session: Session, opts: { all?: boolean }): Promise<RestartPlan> {
  const cluster = await clusterView(session);
  const todo = cluster.members.filter((m) => opts.all || m.pending_restart === true).map((m) => m.name);
  return { plan: planRoll(session.inv, cluster, new Set(todo), await liveSynchronousMode(session, cluster)), todo };
}

/** PostgreSQL's own list of settings waiting for a restart on a member ('' when none). */
async function pendingSettings(session: Session, member: string): Promise<string> {
  const r = await sqlLocal(session.inv, session.conn(member), "select coalesce(string_agg(name, ', ' order by name), '') from pg_settings where pending_restart");
  return r.stdout.trim();
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
      const left = await pendingSettings(session, m);
      return left ? `${m} still waits for a restart to apply: ${left}` : true;
    },
    // The switchover's demotion stopped and started the old leader's PostgreSQL.
    async stillNeeded(m) {
      return opts.all ? false : (await pendingSettings(session, m)) !== '';
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
