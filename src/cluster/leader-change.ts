// Planned and unplanned leader changes, end to end: the pre-checks, Patroni's POST /switchover
// or /failover, then waiting until the new leader is primary, every reachable HAProxy routes its
// primary port to it, and the old leader (when reachable) streams from it; each milestone printed
// with its time. `pgha switchover`/`failover` call these, and so do the day-2 procedures.
import { PghaError, InputError } from '../errors.js';
import { Steps, waitFor } from '../engine/index.js';
import type { Session } from '../session/session.js';
import { anyPatroniCluster, leaderOf, replicationState, streamingReplicas, type PatroniCluster, type Streaming, type PatroniMember } from '../components/patroni/cluster.js';
import { checkSwitchover, findMember } from '../components/patroni/checks.js';
import { isAcceptedOrUnknown, isPrimary, refused, requestFailover, requestSwitchover } from '../components/patroni/actions.js';
import { haproxyServers, upServers } from '../components/haproxy/state.js';
import { drainPrimary, restorePrimary, shutdownSessions } from '../components/haproxy/runtime.js';
import { withVipReleased } from '../components/vip/index.js';

/** GET /cluster from the first database host that answers; a PghaError when none does. */
export async function clusterView(session: Session): Promise<PatroniCluster> {
  const found = await anyPatroniCluster(session);
  if (!found) throw new PghaError('no Patroni REST API answers on any reachable database host');
  return found.cluster;
}

/** The members the leader's PostgreSQL sees streaming, with their lag now; undefined when it cannot be asked. */
export async function streamingFrom(session: Session, leader: string): Promise<Streaming | undefined> {
  const conn = session.conns.get(leader);
  if (!conn) return undefined;
  return replicationState(session.inv, conn).then(streamingReplicas, () => undefined);
}

/** A connection to ask Patroni's REST API from: the host itself, else any reachable database host. */
function askFrom(session: Session, preferred: string) {
  const c = session.conns.get(preferred) ?? session.withRole('postgres')[0];
  if (!c) throw new PghaError('no database host is reachable');
  return c;
}

/**
 * Waits until a leader other than `oldLeader` runs as primary, every reachable HAProxy routes its
 * primary port to it, and (when it is reachable) the old leader streams from it. Returns the new leader.
 */
export async function waitForLeaderChange(session: Session, oldLeader: string | undefined, steps: Steps, waitMs: number): Promise<string> {
  const { inv } = session;
  const haproxy = session.withRole('haproxy');
  const skipped = inv.hostsWithRole('haproxy').filter((h) => !session.conns.has(h.name)).map((h) => h.name);
  const oldReachable = oldLeader !== undefined && session.conns.has(oldLeader);
  let leader: string | undefined;
  let routed = false;
  let rejoined = !oldReachable; // nothing to wait for when there was no old leader or it is unreachable
  await waitFor(
    'the new leader to be primary and routed',
    async () => {
      if (!leader) {
        const l = leaderOf(await clusterView(session));
        if (!l || l.name === oldLeader) return l ? `${l.name} still leads` : 'no running leader yet';
        if (!(await isPrimary(inv, askFrom(session, l.name), inv.host(l.name)))) return `${l.name} holds the leader lock; its /primary does not answer 200 yet`;
        leader = l.name;
        steps.mark(`${l.name} is the primary`);
      }
      if (!routed) {
        const views = await Promise.all(haproxy.map(async (c) => ({ host: c.target.name, up: upServers(await haproxyServers(inv, c), 'primary') })));
        const wrong = views.filter((v) => v.up.length !== 1 || v.up[0] !== leader);
        if (wrong.length) return wrong.map((v) => `HAProxy on ${v.host}: primary backend has [${v.up.join(', ')}] up`).join('; ');
        routed = true;
        steps.mark(`HAProxy routes the primary port to ${leader} on ${views.map((v) => v.host).join(', ') || 'no reachable host'}${skipped.length ? ` (unreachable: ${skipped.join(', ')})` : ''}`);
      }
      if (!rejoined) {
        if (!(await streamingFrom(session, leader))?.has(oldLeader!)) return `${oldLeader} does not stream from ${leader} yet`;
        rejoined = true;
        steps.mark(`${oldLeader} streams from ${leader}`);
      }
      return true;
    },
    { timeoutMs: waitMs, intervalMs: 500 },
  );
  if (!oldReachable && oldLeader) steps.say(`  ${oldLeader} is unreachable: it rejoins as a replica of ${leader} when it is back (Patroni rewinds it)`);
  return leader!;
}

export interface SwitchoverPlan {
  leader: PatroniMember;
  /** What the operator is asked and told, e.g. "switch over cluster main from pg1 to pg2 now". */
  what: string;
}

/** The pre-checks of a switchover (nothing changes): the leader to switch away from, or a refusal. */
export async function planSwitchover(session: Session, candidate: string | undefined, at?: Date): Promise<SwitchoverPlan> {
  // Patroni would move the leader key on its own, with the VIP still on the old leader.
  if (at && session.inv.vip) throw new InputError(`--at: with vip: pgha releases the VIP on the old leader before the leader key moves, which a switchover Patroni runs on its own at a set time cannot do: run pgha switchover (without --at) at that time instead`);
  const cluster = await clusterView(session);
  const leaderNow = leaderOf(cluster);
  const streaming = leaderNow ? await streamingFrom(session, leaderNow.name) : undefined;
  const leader = checkSwitchover(session.inv, cluster, candidate, streaming);
  return { leader, what: `switch over cluster ${session.inv.cluster.name} from ${leader.name} to ${candidate ?? 'a replica Patroni picks'}${at ? ` at ${at.toISOString()}` : ' now'}` };
}

/**
 * POST /switchover now, then wait for the change end to end. Returns the new leader. The old
 * leader is drained in every HAProxy first (no new client connection reaches a server about to
 * become read-only), its sessions closed once Patroni demoted it, and its HAProxy state
 * restored afterwards, also when the switchover fails.
 */
export async function switchoverNow(session: Session, plan: SwitchoverPlan, candidate: string | undefined, steps: Steps, waitMs = 120_000): Promise<string> {
  const { inv } = session;
  const old = plan.leader.name;
  const drained = await drainPrimary(session, old);
  for (const f of drained.failed) steps.say(`  not drained (its health check takes ${old} out later): ${f}`);
  if (drained.hosts.length) steps.mark(`${old} drained in HAProxy on ${drained.hosts.map((c) => c.target.name).join(', ')}`);
  let demoted = false;
  try {
    // With a VIP, the old leader releases it before the leader key moves (never on two hosts).
    return await withVipReleased(session, old, steps, async () => {
      const r = await requestSwitchover(inv, askFrom(session, old), inv.host(old), { leader: old, ...(candidate ? { candidate } : {}) });
      if (!isAcceptedOrUnknown(r)) throw refused('switchover', r);
      steps.mark(`Patroni answered ${r.status}`, r.body.trim());
      demoted = true;
      for (const f of await shutdownSessions(drained)) steps.say(`  ${f}`);
      const now = await waitForLeaderChange(session, old, steps, waitMs);
      if (candidate && now !== candidate) throw new PghaError(`${now} leads now, not ${candidate}`);
      return now;
    });
  } finally {
    if (drained.hosts.length) {
      // Refused by Patroni: the old leader still leads. Otherwise ask (unknown counts as demoted: its health is forced down and comes back with its check).
      const stillLeads = !demoted || (await clusterView(session).then((c) => leaderOf(c)?.name === old, () => false));
      for (const f of await restorePrimary(drained, stillLeads)) steps.say(`  ${f}`);
    }
  }
}

/** POST /switchover with scheduled_at: Patroni does it at that time. Returns Patroni's answer. */
export async function scheduleSwitchover(session: Session, plan: SwitchoverPlan, candidate: string | undefined, at: string): Promise<string> {
  const { inv } = session;
  const r = await requestSwitchover(inv, askFrom(session, plan.leader.name), inv.host(plan.leader.name), { leader: plan.leader.name, ...(candidate ? { candidate } : {}), scheduled_at: at });
  if (r.status !== 202 && r.status !== 200) throw refused('switchover', r);
  return `(${r.status}): ${r.body.trim()}`;
}

export interface FailoverPlan {
  candidate: PatroniMember;
  oldLeader?: string;
  what: string;
  /** The candidate is the healthy leader already: nothing to do. */
  done: boolean;
}

/** The pre-checks of a failover (nothing changes). */
export async function planFailover(session: Session, candidateName: string): Promise<FailoverPlan> {
  const { inv } = session;
  const cluster = await clusterView(session);
  const candidate = findMember(inv, cluster, candidateName);
  const leader = leaderOf(cluster);
  if (leader) {
    // The lock alone is not health: a dead leader keeps it until its TTL runs out.
    const healthy = await isPrimary(inv, askFrom(session, leader.name), inv.host(leader.name)).catch(() => false);
    if (healthy && leader.name === candidate.name) return { candidate, what: `${leader.name} is the healthy leader already: nothing to do`, done: true };
    if (healthy) throw new InputError(`the cluster has a healthy leader, ${leader.name}: a failover is for a cluster without one. Use pgha switchover --candidate ${candidate.name}`);
  }
  // Without a working leader lag means little: Patroni itself refuses a candidate too far behind.
  if (candidate.tags?.nofailover === true) throw new InputError(`${candidate.name} is tagged nofailover: Patroni never promotes it`);
  if (candidate.state !== 'running' && candidate.state !== 'streaming') throw new PghaError(`${candidate.name} is ${candidate.state}, not running: it cannot take over`);
  if (!session.conns.has(candidate.name)) throw new PghaError(`${candidate.name} is unreachable: ${session.unreachable.get(candidate.name) ?? ''}`);
  const what = `fail over cluster ${inv.cluster.name} to ${candidate.name}${leader ? ` (the leader lock is still held by ${leader.name}, whose Patroni does not answer as primary)` : ' (no leader)'}`;
  return { candidate, oldLeader: leader?.name, what, done: false };
}

/** POST /failover to the candidate, then wait for the change. Returns the new leader. */
export async function failoverNow(session: Session, plan: FailoverPlan, steps: Steps, waitMs = 120_000): Promise<string> {
  const { inv } = session;
  const r = await requestFailover(inv, session.conn(plan.candidate.name), inv.host(plan.candidate.name));
  if (!isAcceptedOrUnknown(r)) throw refused('failover', r);
  steps.mark(`Patroni answered ${r.status}`, r.body.trim());
  return waitForLeaderChange(session, plan.oldLeader, steps, waitMs);
}
