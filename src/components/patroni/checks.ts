// The pure part of switchover and failover: which member may take over, and why not.
// Bad input (no such member, nofailover, the leader itself) is an InputError (exit 2); a member
// that cannot take over right now (stopped, lagging) is a PghaError (exit 1).
import type { Inventory } from '../../inventory/index.js';
import { InputError, PghaError } from '../../errors.js';
import { isRunningState, lagOf, leaderOf, normalizeRole, type PatroniCluster, type PatroniMember, type Streaming } from './cluster.js';

const nofailover = (m: PatroniMember) => m.tags?.nofailover === true;

/** Why `m` cannot become the leader now, or undefined when it can. `streaming`: who the leader sees streaming, with its lag. */
export function candidateProblem(inv: Inventory, m: PatroniMember, streaming?: Streaming): PghaError | undefined {
  if (nofailover(m)) return new InputError(`${m.name} is tagged nofailover: Patroni never promotes it`);
  if (!isRunningState(m.state)) return new PghaError(`${m.name} is ${m.state}, not running: it cannot take over`);
  if (streaming && !streaming.has(m.name)) return new PghaError(`${m.name} does not stream from the leader: it cannot take over`);
  const lag = lagOf(m, streaming);
  if (lag === undefined) return new PghaError(`${m.name}'s replication lag is unknown: it cannot take over`);
  if (lag > inv.patroni.maximum_lag_on_failover) {
    return new PghaError(`${m.name} lags ${lag} bytes, more than maximum_lag_on_failover (${inv.patroni.maximum_lag_on_failover}): it cannot take over`);
  }
  return undefined;
}

/** The member named `name`, or an error saying it is none (exit 2 unless it is an inventory host whose Patroni is not a member now). */
export function findMember(inv: Inventory, c: PatroniCluster, name: string): PatroniMember {
  const m = c.members.find((x) => x.name === name);
  if (m) return m;
  const members = c.members.map((x) => x.name).join(', ') || 'none';
  if (inv.hostsWithRole('postgres').some((h) => h.name === name)) {
    throw new PghaError(`${name} is not a Patroni member right now (is Patroni running there?); members: ${members}`);
  }
  throw new InputError(`${name} is not a member of cluster ${inv.cluster.name}; members: ${members}`);
}

/** Pre-checks of a switchover; returns the leader to switch away from. */
export function checkSwitchover(inv: Inventory, c: PatroniCluster, candidate: string | undefined, streaming: Streaming | undefined): PatroniMember {
  const leader = leaderOf(c);
  if (!leader) throw new PghaError('the cluster has no running leader: a switchover needs one (use pgha failover --candidate NAME)');
  if (c.pause) throw new PghaError('the cluster is paused (maintenance mode): resume it (patronictl resume) before a switchover');
  if (c.scheduled_switchover) throw new PghaError(`a switchover is already scheduled at ${c.scheduled_switchover.at}: cancel it (patronictl flush ${inv.cluster.name} switchover) first`);
  if (candidate !== undefined) {
    const m = findMember(inv, c, candidate);
    if (m.name === leader.name) throw new InputError(`${candidate} is the leader already`);
    const problem = candidateProblem(inv, m, streaming);
    if (problem) throw problem;
    // In synchronous mode Patroni switches over only to the synchronous standby (412 otherwise).
    const sync = c.members.filter((x) => normalizeRole(x.role) === 'sync_standby').map((x) => x.name);
    if (sync.length && !sync.includes(m.name)) {
      throw new PghaError(`${candidate} is not the synchronous standby (${sync.join(', ')} is): in synchronous mode only the synchronous standby can take over without losing acknowledged writes; leave out --candidate, or name it`);
    }
  } else {
    const able = c.members.filter((m) => m.name !== leader.name && !candidateProblem(inv, m, streaming));
    if (able.length === 0) {
      const why = c.members.filter((m) => m.name !== leader.name).map((m) => candidateProblem(inv, m, streaming)!.message);
      throw new PghaError(`no replica can take over: ${why.join('; ') || 'the leader is the only member'}`);
    }
  }
  return leader;
}

/** `--at`: ISO 8601 with a timezone, in the future. */
export function parseAt(at: string, now = Date.now()): Date {
  const iso = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)$/i;
  const t = Date.parse(at.replace(' ', 'T'));
  if (!iso.test(at) || Number.isNaN(t)) {
    throw new InputError(`--at ${JSON.stringify(at)}: expected an ISO 8601 time with a timezone, e.g. 2030-01-31T02:00:00+01:00 or 2030-01-31T01:00:00Z`);
  }
  if (t <= now) throw new InputError(`--at ${at} is in the past: a scheduled switchover must be in the future`);
  return new Date(t);
}
