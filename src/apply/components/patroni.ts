// PostgreSQL under Patroni. The config is written on every member first; Patroni then starts on
// one member (the current leader, or the first candidate on a new cluster) and the rollout waits
// until it leads, then starts the others and waits until each streams from the leader.
// Dynamic settings live in etcd after the bootstrap, so changes to them go through PATCH /config.
import { parse } from 'yaml';
import type { Operation } from '../../engine/index.js';
import type { Host } from '../../inventory/index.js';
import type { ApplyContext } from '../context.js';
import { renderedFile } from '../context.js';
import { reloadIfRunning, renderedFileOp, serviceStarted } from '../ops.js';
import { anyPatroniCluster, httpFrom, leaderOf, restapiUrl, sqlLocal } from '../../cluster/probes.js';
import { membersStreaming, patroniHasLeader } from '../../cluster/health.js';
import { ARCHIVE_PUSH, isPatroniSecretKey } from '../../render/index.js';
import { MASK, shellQuote } from '../../ssh/index.js';

const CONFIG = '/etc/patroni/config.yml';

/** `beforeReplicas` runs once the leader is up, before the other members start (not in check mode). */
export async function patroniComponent(ctx: ApplyContext, beforeReplicas: () => Promise<void> = async () => {}): Promise<void> {
  const { session, rollout } = ctx;
  const { inv } = session;
  const members = session.withRole('postgres');
  await rollout.stage('patroni config', members, (conn) => [
    renderedFileOp(renderedFile(ctx, conn.target.name, ARCHIVE_PUSH)),
    renderedFileOp(renderedFile(ctx, conn.target.name, CONFIG), [reloadIfRunning('patroni')]),
  ]);
  const found = await anyPatroniCluster(inv, (h) => session.conns.get(h.name));
  const leader = found && leaderOf(found.cluster);
  if (rollout.check) {
    await rollout.stage('patroni start', members, () => [serviceStarted('patroni')]);
    if (leader) await rollout.stage('patroni dynamic config', [session.conn(leader.name)], () => [dynamicConfigOp(ctx, inv.host(leader.name))]);
    return;
  }

  const first = leader ? inv.host(leader.name) : inv.hostsWithRole('postgres').find((h) => !h.tags.nofailover)!;
  await rollout.stage(`patroni start (${first.name})`, [session.conn(first)], () => [serviceStarted('patroni')]);
  await rollout.waitFor('Patroni: a leader is running', () => patroniHasLeader(session), { timeoutMs: 180_000, intervalMs: 1000 });
  await beforeReplicas();

  const others = members.filter((c) => c.target.name !== first.name);
  if (others.length) await rollout.stage('patroni start (replicas)', others, () => [serviceStarted('patroni')]);
  await rollout.waitFor('Patroni: every replica streaming from the leader', () => membersStreaming(session), { timeoutMs: 600_000, intervalMs: 2000 });

  const now = await anyPatroniCluster(inv, (h) => session.conns.get(h.name));
  const leaderHost = inv.host(leaderOf(now!.cluster)!.name);
  await rollout.stage('patroni dynamic config', [session.conn(leaderHost)], () => [dynamicConfigOp(ctx, leaderHost)]);
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** The dynamic settings pgha manages: bootstrap.dcs of the rendered config (one source for both). */
export function wantedDynamicConfig(ctx: ApplyContext, h: Host): Record<string, Json> {
  return (parse(renderedFile(ctx, h, CONFIG).content) as { bootstrap: { dcs: Record<string, Json> } }).bootstrap.dcs;
}

/**
 * A value as the change summary shows it: what sits under a key Patroni's config declares secret
 * (isPatroniSecretKey, the same rule that masks its config file) is never shown, at any depth.
 */
function shown(key: string, v: Json | undefined): string {
  const hide = (k: string, x: Json): Json => {
    if (x === null) return null; // absent (or removed): nothing to hide, and the summary says so
    if (isPatroniSecretKey(k)) return MASK;
    if (Array.isArray(x)) return x.map((e) => hide('', e));
    if (typeof x === 'object') return Object.fromEntries(Object.entries(x).map(([ck, cv]) => [ck, hide(ck, cv)]));
    return x;
  };
  return JSON.stringify(hide(key, v ?? null));
}

// Numbers and strings alike (etcd may hand back "200" for 200); maps and lists by content (as
// text every object is "[object Object]", so a changed one was taken for unchanged).
const scalar = (x: Json | undefined) => x === null || x === undefined || typeof x !== 'object';
const same = (a: Json | undefined, b: Json | undefined) => (scalar(a) && scalar(b) && String(a ?? '') === String(b ?? '')) || JSON.stringify(a) === JSON.stringify(b);

/**
 * The PATCH that takes the live dynamic config to the wanted one: changed top-level settings,
 * changed postgresql.* settings, and PostgreSQL parameters (null removes one pgha no longer sets).
 */
export function dynamicConfigPatch(live: Record<string, Json>, wanted: Record<string, Json>): { patch: Record<string, Json>; changes: string[] } {
  const patch: Record<string, Json> = {};
  const changes: string[] = [];
  for (const [k, v] of Object.entries(wanted)) {
    if (k === 'postgresql') continue;
    if (!same(live[k], v)) {
      patch[k] = v;
      changes.push(`${k} ${shown(k, live[k])} -> ${shown(k, v)}`);
    }
  }
  const wpg = (wanted.postgresql ?? {}) as Record<string, Json>;
  const lpg = (live.postgresql ?? {}) as Record<string, Json>;
  const pgPatch: Record<string, Json> = {};
  for (const [k, v] of Object.entries(wpg)) {
    if (k === 'parameters' || k === 'recovery_conf') {
      const lv = (lpg[k] ?? {}) as Record<string, Json>;
      const wv = (v ?? {}) as Record<string, Json>;
      const sub: Record<string, Json> = {};
      for (const [pk, pv] of Object.entries(wv)) if (!same(lv[pk], pv)) sub[pk] = pv;
      for (const pk of Object.keys(lv)) if (!(pk in wv)) sub[pk] = null;
      for (const [pk, pv] of Object.entries(sub)) changes.push(`postgresql.${k}.${pk} ${shown(pk, lv[pk])} -> ${shown(pk, pv)}`);
      if (Object.keys(sub).length) pgPatch[k] = sub;
    } else if (!same(lpg[k], v)) {
      pgPatch[k] = v;
      changes.push(`postgresql.${k} ${shown(k, lpg[k])} -> ${shown(k, v)}`);
    }
  }
  if (Object.keys(pgPatch).length) patch.postgresql = pgPatch;
  return { patch, changes };
}

function dynamicConfigOp(ctx: ApplyContext, leader: Host): Operation {
  const { inv } = ctx.session;
  const url = restapiUrl(inv, leader, '/config');
  const diff = async () => {
    const r = await httpFrom(ctx.session.conn(leader), 'GET', url);
    if (r.status !== 200) throw new Error(`GET /config answered ${r.status}`);
    return dynamicConfigPatch(JSON.parse(r.body) as Record<string, Json>, wantedDynamicConfig(ctx, leader));
  };
  return {
    describe: 'dynamic configuration (PATCH /config)',
    async check() {
      const { changes } = await diff();
      return changes.length ? { summary: changes.join(', ') } : null;
    },
    async apply(conn) {
      const { patch } = await diff();
      const r = await httpFrom(conn, 'PATCH', url, { body: patch, auth: inv, timeoutSec: 30 });
      if (r.status !== 200) throw new Error(`PATCH /config answered ${r.status}: ${conn.masker.mask(r.body).slice(0, 300)}`);
      const params = Object.keys(((patch.postgresql ?? {}) as Record<string, Json>).parameters ?? {});
      if (params.length) {
        const list = params.map((p) => `'${p.replace(/'/g, "''")}'`).join(',');
        const restart = (await sqlLocal(inv, conn, `select name from pg_settings where context = 'postmaster' and name in (${list})`)).stdout.split('\n').filter(Boolean);
        if (restart.length) {
          const now = await anyPatroniCluster(inv, (h) => ctx.session.conns.get(h.name));
          const members = (now?.cluster.members ?? []).filter((m) => m.name !== leader.name).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
          const replicas = members.map((m) => ({ name: m.name, nofailover: m.tags?.nofailover === true || inv.hosts.some((h) => h.name === m.name && h.tags.nofailover) }));
          ctx.notes.push(pendingRestartNote(restart, { cluster: inv.cluster.name, leader: leader.name, replicas, inventoryFile: ctx.inventoryFile }));
        }
      }
    },
  };
}

/** "a", "a and b", "a, b and c" */
function listing(items: string[]): string {
  return items.length <= 1 ? items.join('') : `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

/**
 * What to do about parameters that need a PostgreSQL restart. `patronictl restart --pending`
 * for the whole cluster restarts the leader first (writes fail while it restarts): instead the
 * replicas one by one, then a switchover to a restarted one, then the old leader (a no-op when
 * the switchover's demotion already restarted it: `--pending`).
 */
export function pendingRestartNote(
  params: string[],
  c: { cluster: string; leader: string; replicas: { name: string; nofailover: boolean }[]; inventoryFile?: string },
): string {
  const restart = (member: string) => `sudo -u postgres patronictl -c ${CONFIG} restart ${c.cluster} ${member} --pending --force`;
  const head = `pending restart: ${listing(params)} ${params.length === 1 ? 'takes' : 'take'} effect only after PostgreSQL restarts.`;
  const candidate = c.replicas.find((r) => !r.nofailover);
  const steps = c.replicas.map((r) => restart(r.name));
  let how: string;
  if (candidate) {
    steps.push(`pgha switchover -i ${shellQuote(c.inventoryFile ?? 'INVENTORY')} --candidate ${candidate.name}`, restart(c.leader));
    how =
      'Restart the replicas first, one at a time, then switch over to a restarted replica and restart the old leader ' +
      '(a switchover pauses writes for about 2 s; restarting the leader in place fails them for longer)';
  } else {
    steps.push(restart(c.leader));
    how = 'Restart the replicas first, one at a time, then the leader (no replica can take over: writes fail while it restarts)';
  }
  return `${head} ${how}; patronictl runs on any database host:\n${steps.map((s, i) => `  ${i + 1}. ${s}`).join('\n')}`;
}
