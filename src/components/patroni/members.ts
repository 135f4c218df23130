// Day 2 for PostgreSQL members: a host that joins the running cluster (Patroni started there:
// it clones from the pgBackRest repository, else pg_basebackup, and streams), a host that leaves
// (Patroni stopped and disabled, its member key removed from the DCS and the leader drops its
// replication slot; its data stays unless --purge), and a replica's data rebuilt (Patroni's
// POST /reinitialize).
import { service, type Operation } from '../../engine/index.js';
import { InputError } from '../../errors.js';
import type { Host, Inventory } from '../../inventory/index.js';
import type { Connection } from '../../ssh/index.js';
import { httpFrom, sqlLocal, type HttpResult } from '../../session/remote.js';
import type { Session } from '../../session/session.js';
import type { ApplyContext, TopologyFacts, TopologyStep } from '../types.js';
import { removeMemberFromDcs, stopMember } from './actions.js';
import { candidateProblem } from './checks.js';
import { anyPatroniCluster, isRunningState, lagOf, leaderOf, replicationState, type PatroniCluster, type PatroniMember, type Streaming } from './cluster.js';
import { readPatroniSetup } from './config.js';
import { dataDir, PATRONI_CONFIG, restapiUrl } from './paths.js';

/** Patroni's replication slot name of a member (slot_name_from_member_name: lowercase, - and . as _). */
export function slotName(member: string): string {
  return member
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, (c) => (c === '-' || c === '.' ? '_' : `u${String(c.codePointAt(0)).padStart(4, '0')}`))
    .slice(0, 63);
}

/**
 * The replica that takes over from a leader that leaves: a member that stays, runs, streams,
 * is not tagged nofailover, with the least lag. Refused (nothing changed) when there is none.
 */
export function bestReplica(inv: Inventory, c: PatroniCluster, staying: string[], streaming?: Streaming): PatroniMember {
  const leader = leaderOf(c);
  const able = c.members
    .filter((m) => m.name !== leader?.name && staying.includes(m.name))
    .filter((m) => candidateProblem(inv, m, streaming) === undefined)
    .sort((a, b) => (lagOf(a, streaming) as number) - (lagOf(b, streaming) as number) || (a.name < b.name ? -1 : 1));
  if (able.length) return able[0];
  const why = c.members.filter((m) => m.name !== leader?.name && staying.includes(m.name)).map((m) => candidateProblem(inv, m, streaming)!.message);
  throw new InputError(
    `${leader?.name ?? 'the leader'} leaves roles.postgres, but no replica that stays can take over${why.length ? `: ${why.join('; ')}` : ' (none stays)'}. Nothing was changed`,
  );
}

/** Every `h` streams from the leader within maximum_lag_on_failover: true or why not. */
export async function memberStreams(session: Session, name: string): Promise<true | string> {
  const { inv } = session;
  const found = await anyPatroniCluster(session);
  if (!found) return 'no Patroni REST API answers';
  const leader = leaderOf(found.cluster);
  if (!leader) return 'no leader';
  const m = found.cluster.members.find((x) => x.name === name);
  if (!m) return `${name} is not a member yet`;
  if (!isRunningState(m.state)) return `${name} is ${m.state}`;
  if (m.name === leader.name) return `${name} leads`;
  const row = (await replicationState(inv, session.conn(leader.name))).find((r) => r.name === name && r.state === 'streaming');
  if (!row) return `${name} does not stream from ${leader.name} yet`;
  if ((row.lag_bytes ?? 0) > inv.patroni.maximum_lag_on_failover) return `${name} lags ${row.lag_bytes} bytes behind ${leader.name}`;
  return true;
}

// ---------------------------------------------------------------- joining

async function join(ctx: ApplyContext, host: Host): Promise<void> {
  const { session, rollout } = ctx;
  await rollout.stage(`patroni join (${host.name})`, [session.conn(host)], () => [service('patroni')]);
  // A clone copies the whole database: no fixed bound fits every size, the gate shows what it waits for.
  await rollout.waitFor(`Patroni: ${host.name} streams from the leader`, () => memberStreams(session, host.name), { timeoutMs: 6 * 3600_000, intervalMs: 2000 });
}

// ---------------------------------------------------------------- leaving

/** Patroni stopped (PostgreSQL with it, checked) and disabled. */
function stoppedOp(): Operation {
  return {
    describe: 'Patroni stopped and disabled (PostgreSQL stopped with it)',
    needs: { services: ['patroni'], files: [PATRONI_CONFIG] },
    async check(_conn, facts) {
      const s = await facts.service('patroni');
      const parts = [...(s.active === 'active' || s.active === 'activating' ? ['stop'] : []), ...(s.enabled === 'enabled' ? ['disable'] : [])];
      return parts.length ? { summary: parts.join(', ') } : null;
    },
    async apply(conn, facts) {
      const text = await conn.readFile(PATRONI_CONFIG);
      if (text !== null) await stopMember(conn, readPatroniSetup(text));
      else await conn.run(['systemctl', 'stop', 'patroni']);
      await conn.run(['systemctl', 'disable', 'patroni']);
      facts.invalidate({ services: ['patroni'] });
    },
  };
}

/** Paths removed from a host (rm -rf), each only when it exists. */
function removedOp(describe: string, paths: string[]): Operation {
  return {
    describe,
    needs: { files: paths },
    async check(_conn, facts) {
      const exist = await Promise.all(paths.map(async (p) => (await facts.file(p)).exists));
      const there = paths.filter((_, i) => exist[i]);
      return there.length ? { summary: `remove ${there.join(', ')}` } : null;
    },
    async apply(conn, facts) {
      await conn.run(['rm', '-rf', '--', ...paths]);
      facts.invalidate({ files: paths });
    },
  };
}

/** The member key gone from the DCS, then its slot gone on the leader (dropped by pgha if Patroni keeps it). */
async function gone(ctx: ApplyContext, name: string): Promise<void> {
  const { session, rollout } = ctx;
  const { inv } = session;
  const slot = slotName(name);
  let leaderName = '';
  await rollout.waitFor(`Patroni: ${name}'s member key gone from the DCS`, async () => {
    const found = await anyPatroniCluster(session);
    if (!found) return 'no Patroni REST API answers';
    const m = found.cluster.members.find((x) => x.name === name);
    if (m) return `${name} is still listed (${m.state}): its key expires within ttl (${inv.timing.patroni.ttl} s) if it was not removed`;
    const l = leaderOf(found.cluster);
    if (!l) return 'no leader';
    leaderName = l.name;
    return true;
  }, { timeoutMs: (inv.timing.patroni.ttl + 60) * 1000, intervalMs: 1000 });
  const slotThere = async () =>
    (await sqlLocal(inv, session.conn(leaderName), `select count(*) from pg_replication_slots where slot_name = '${slot}'`)).stdout.trim() !== '0';
  try {
    await rollout.waitFor(`Patroni: replication slot ${slot} dropped on the leader ${leaderName}`, async () => ((await slotThere()) ? `slot ${slot} still exists` : true), {
      timeoutMs: (inv.timing.patroni.loop_wait * 5 + 20) * 1000,
      intervalMs: 1000,
    });
  } catch (err) {
    // Patroni 4 keeps a departed member's slot for member_slots_ttl (30 min by default).
    if (!(await slotThere())) return;
    const r = await sqlLocal(inv, session.conn(leaderName), `select pg_drop_replication_slot('${slot}') from pg_replication_slots where slot_name = '${slot}' and not active`, { check: false });
    if (r.code !== 0 || (await slotThere())) throw err;
    rollout.reporter.progress(leaderName, `Patroni kept replication slot ${slot} of ${name}, which left: dropped it`);
  }
}

async function leave(ctx: ApplyContext, host: Host, purge: boolean): Promise<void> {
  const { session, rollout } = ctx;
  const { inv } = session;
  await rollout.stage(`patroni leave (${host.name})`, [session.conn(host)], () => [
    stoppedOp(),
    // It holds the cluster's passwords, and a Patroni started by hand would join the cluster again.
    removedOp(`${PATRONI_CONFIG} removed`, [PATRONI_CONFIG]),
    ...(purge ? [removedOp(`data directory ${dataDir(inv, ctx.platform.release)} removed (--purge)`, [dataDir(inv, ctx.platform.release)])] : []),
  ]);
  // Patroni is stopped there (the stage checked it): its member key can go now rather than after ttl.
  const etcdConn = session.withRole('etcd')[0];
  const failed = etcdConn ? await removeMemberFromDcs(inv, etcdConn, ctx.dcs, host.name) : 'no etcd host answers';
  if (failed) rollout.reporter.progress(host.name, `its member key stays until it expires: ${failed}`);
  await gone(ctx, host.name);
}

// ---------------------------------------------------------------- the plan

/** Inventory hosts that run (or ran) Patroni but are no longer postgres hosts. */
export function leavingMembers(facts: TopologyFacts, inv: Inventory): string[] {
  const target = new Set(inv.hostsWithRole('postgres').map((h) => h.name));
  const members = new Set(facts.patroni?.cluster.members.map((m) => m.name) ?? []);
  return inv.hosts
    .filter((h) => !target.has(h.name))
    .filter((h) => {
      const f = facts.hosts.get(h.name);
      return members.has(h.name) || f?.patroni.active || f?.patroni.enabled || f?.patroni.config;
    })
    .map((h) => h.name);
}

export function planMembers(facts: TopologyFacts, inv: Inventory): TopologyStep[] {
  const c = facts.patroni?.cluster;
  if (!c || !leaderOf(c)) return []; // no running cluster: apply's start bootstraps or restarts it
  const names = new Set(inv.hosts.map((h) => h.name));
  const unknown = c.members.filter((m) => !names.has(m.name));
  if (unknown.length) {
    throw new InputError(
      `Patroni member${unknown.length > 1 ? 's' : ''} ${unknown.map((m) => `${m.name} (${m.state})`).join(', ')} ${unknown.length > 1 ? 'are' : 'is'} not in the inventory: pgha cannot stop ${unknown.length > 1 ? 'them' : 'it'}. ` +
        'Keep such a host under hosts: (without roles.postgres) so that apply stops Patroni there, or stop Patroni there yourself (its member key then expires)',
    );
  }
  const members = new Set(c.members.map((m) => m.name));
  const steps: TopologyStep[] = [];
  for (const h of inv.hostsWithRole('postgres').filter((x) => !members.has(x.name))) {
    const how = facts.hosts.get(h.name)?.pgData
      ? 'from its existing data directory'
      : 'cloned from the pgBackRest repository (else pg_basebackup from the leader)';
    steps.push({ phase: 'patroni.start', text: `postgres: ${h.name} joins as a replica, ${how}, and streams from the leader`, run: (ctx) => join(ctx, h) });
  }
  for (const name of leavingMembers(facts, inv)) {
    const dir = dataDir(inv, facts.release);
    const data = facts.purge ? `its data directory ${dir} is removed (--purge)` : `its data stays in ${dir} (--purge removes it)`;
    steps.push({
      phase: 'patroni.leave',
      text: `postgres: ${name} leaves: Patroni stopped and disabled, its config removed, its member key gone from the DCS and its replication slot dropped; ${data}`,
      run: (ctx) => leave(ctx, inv.host(name), facts.purge),
    });
  }
  return steps;
}

// ---------------------------------------------------------------- reinitialize

/** POST /reinitialize to the member's own Patroni (REST API credentials over stdin). */
export function requestReinitialize(inv: Inventory, from: Connection, member: Host): Promise<HttpResult> {
  return httpFrom(from, 'POST', restapiUrl(inv, member, '/reinitialize'), { body: {}, auth: inv, timeoutSec: 60 });
}

/** When PostgreSQL on `conn` last started (pg_postmaster_start_time), or null when it does not answer. */
export async function postmasterStart(inv: Inventory, conn: Connection): Promise<string | null> {
  const r = await sqlLocal(inv, conn, 'select pg_postmaster_start_time()', { check: false, timeoutMs: 10_000 });
  return r.code === 0 ? r.stdout.trim() : null;
}

