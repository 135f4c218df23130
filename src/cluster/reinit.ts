// Rebuilding one replica's data, end to end: the pre-checks (a running leader; the member is a
// replica), Patroni's POST /reinitialize on the member, then waiting until PostgreSQL there has
// started again on new data and streams from the leader; each milestone printed with its time.
import { Steps, waitFor } from '../engine/index.js';
import { InputError, PghaError } from '../errors.js';
import { refused } from '../components/patroni/actions.js';
import { findMember } from '../components/patroni/checks.js';
import { leaderOf } from '../components/patroni/cluster.js';
import { memberStreams, postmasterStart, requestReinitialize } from '../components/patroni/members.js';
import type { Session } from '../session/session.js';
import { clusterView } from './leader-change.js';

export interface ReinitPlan {
  member: string;
  leader: string;
  what: string;
}

/** The pre-checks (nothing changes): refused on the leader, without a running leader, on an unreachable member. */
export async function planReinit(session: Session, member: string): Promise<ReinitPlan> {
  const { inv } = session;
  const cluster = await clusterView(session);
  const m = findMember(inv, cluster, member);
  const leader = leaderOf(cluster);
  if (!leader) throw new PghaError(`cluster ${inv.cluster.name} has no running leader: a replica is rebuilt from the leader (or the repository while a leader archives); fix the leader first`);
  if (m.name === leader.name) {
    throw new InputError(`${member} is the leader: pgha reinit rebuilds a replica's data. Switch over first (pgha switchover -i ${inv.file} --candidate REPLICA), then reinit ${member}`);
  }
  if (!session.conns.has(member)) throw new PghaError(`${member} is unreachable: ${session.unreachable.get(member) ?? ''}`);
  return { member, leader: leader.name, what: `rebuild ${member}'s data (Patroni reinitialize: its data directory emptied, copied again from the pgBackRest repository or by pg_basebackup from ${leader.name})` };
}

/** POST /reinitialize, then wait until the member runs on new data and streams from the leader. */
export async function reinitNow(session: Session, plan: ReinitPlan, steps: Steps, waitMs = 6 * 3600_000): Promise<void> {
  const { inv } = session;
  const conn = session.conn(plan.member);
  const host = inv.host(plan.member);
  const before = await postmasterStart(inv, conn);
  const r = await requestReinitialize(inv, conn, host);
  if (r.status !== 200) throw refused('reinitialize', r);
  steps.mark(`Patroni answered ${r.status}`, r.body.trim());
  let restarted = false;
  await waitFor(
    `${plan.member} rebuilt and streaming`,
    async () => {
      if (!restarted) {
        const now = await postmasterStart(inv, conn);
        if (now === null || now === before) return `${plan.member}: PostgreSQL not started on new data yet`;
        restarted = true;
        steps.mark(`${plan.member}'s PostgreSQL runs on the new data`);
      }
      return memberStreams(session, plan.member);
    },
    { timeoutMs: waitMs, intervalMs: 1000 },
  );
  steps.mark(`${plan.member} streams from ${plan.leader}`);
}
