// Health probes used as apply's gates, by verify and by status: each returns true when the
// condition holds, otherwise the reason it does not (what a gate shows while it waits).
import type { Session } from './session.js';
import { anyPatroniCluster, etcdState, haproxyServers, isRunningState, leaderOf, sqlLocal } from './probes.js';

export async function etcdReady(session: Session): Promise<true | string> {
  const members = await etcdState(session.inv, session.withRole('etcd')[0]);
  const sick = members.filter((m) => !m.healthy);
  if (sick.length) return `not healthy: ${sick.map((m) => `${m.name} (${m.error ?? '?'})`).join(', ')}`;
  const leaders = members.filter((m) => m.leader);
  return leaders.length === 1 ? true : `${leaders.length} leaders`;
}

export async function patroniHasLeader(session: Session): Promise<true | string> {
  const found = await anyPatroniCluster(session.inv, (h) => session.conns.get(h.name));
  if (!found) return 'no Patroni REST API answers yet';
  const leader = leaderOf(found.cluster);
  return leader ? true : `members: ${found.cluster.members.map((m) => `${m.name} ${m.role} ${m.state}`).join(', ') || 'none yet'}`;
}

/** Every postgres host is a running member; every non-leader streams from the leader within the lag limit. */
export async function membersStreaming(session: Session): Promise<true | string> {
  const { inv, conns } = session;
  const found = await anyPatroniCluster(inv, (h) => conns.get(h.name));
  if (!found) return 'no Patroni REST API answers';
  const leader = leaderOf(found.cluster);
  if (!leader) return 'no leader';
  const leaderConn = conns.get(leader.name);
  if (!leaderConn) return `leader ${leader.name} is not an inventory host`;
  // Lag measured now, on the leader: Patroni's own figure is refreshed only every loop_wait, and
  // right after a WAL switch (a backup, a check) it shows a whole segment of lag that is not there.
  const rows = (
    await sqlLocal(inv, leaderConn, "select application_name, pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint from pg_stat_replication where state = 'streaming'")
  ).stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split('|'));
  const lagOf = new Map(rows.map(([name, lag]) => [name, Number(lag)]));
  const problems: string[] = [];
  for (const h of inv.hostsWithRole('postgres')) {
    const m = found.cluster.members.find((x) => x.name === h.name);
    if (!m) problems.push(`${h.name} is not a member yet`);
    else if (!isRunningState(m.state)) problems.push(`${h.name} is ${m.state}`);
    else if (m.name !== leader.name) {
      const lag = lagOf.get(m.name);
      if (lag === undefined) problems.push(`${h.name} does not stream from ${leader.name} yet`);
      else if (lag > inv.patroni.maximum_lag_on_failover) problems.push(`${h.name} lags ${lag} bytes behind ${leader.name}`);
    }
  }
  return problems.length ? problems.join('; ') : true;
}

export async function haproxyRoutesToLeader(session: Session): Promise<true | string> {
  const { inv } = session;
  const pc = await anyPatroniCluster(inv, (h) => session.conns.get(h.name));
  const leader = pc && leaderOf(pc.cluster);
  if (!leader) return 'no Patroni leader';
  for (const conn of session.withRole('haproxy')) {
    const up = (await haproxyServers(inv, conn)).filter((s) => s.backend === 'primary' && s.status.startsWith('UP')).map((s) => s.server);
    if (up.length !== 1 || up[0] !== leader.name) return `${conn.target.name}: primary backend has [${up.join(', ')}] up, leader is ${leader.name}`;
  }
  return true;
}
