// Patroni's configuration, both halves: the file on each member (read back where a runbook needs
// its DCS and paths) and the dynamic configuration in the DCS, which after the bootstrap changes
// only through PATCH /config.
import { parse } from 'yaml';
import { PghaError } from '../../errors.js';
import type { Host, Inventory } from '../../inventory/index.js';
import type { Operation } from '../../engine/index.js';
import type { Connection } from '../../ssh/index.js';
import { httpFrom, sqlLocal } from '../../session/remote.js';
import { renderedFile, type ApplyContext, type Dcs } from '../types.js';
import { PATRONI_CONFIG, restapiUrl } from './paths.js';
import { isPatroniSecretKey } from './files.js';
import { MASK } from '../../ssh/mask.js';
import { shellQuote } from '../../ssh/quote.js';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

// ---------------------------------------------------------------- the file on a member

/** What a runbook needs from a member's /etc/patroni/config.yml. */
export interface PatroniSetup {
  dcs: Dcs;
  scope: string;
  namespace: string;
  dataDir: string;
  binDir: string;
}

/** Reads the config file's text (never printed: it holds passwords). */
export function readPatroniSetup(configText: string): PatroniSetup {
  const cfg = parse(configText) as {
    scope?: string;
    namespace?: string;
    etcd?: unknown;
    etcd3?: unknown;
    postgresql?: { data_dir?: string; bin_dir?: string };
  };
  const dcs = cfg.etcd3 !== undefined ? 'etcd3' : cfg.etcd !== undefined ? 'etcd' : undefined;
  if (!dcs) throw new PghaError(`${PATRONI_CONFIG} has neither an etcd: nor an etcd3: section: run pgha apply`);
  if (!cfg.scope || !cfg.postgresql?.data_dir || !cfg.postgresql.bin_dir) throw new PghaError(`${PATRONI_CONFIG} lacks scope, postgresql.data_dir or postgresql.bin_dir: run pgha apply`);
  return { dcs, scope: cfg.scope, namespace: cfg.namespace ?? '/service/', dataDir: cfg.postgresql.data_dir, binDir: cfg.postgresql.bin_dir };
}

/** The setup a member runs with; its config file must exist (pgha apply wrote it). */
export async function memberSetup(conn: Connection): Promise<PatroniSetup> {
  const text = await conn.readFile(PATRONI_CONFIG);
  if (text === null) throw new PghaError(`${conn.target.name}: ${PATRONI_CONFIG} does not exist: run pgha apply first`);
  return readPatroniSetup(text);
}

// ---------------------------------------------------------------- the dynamic configuration

/** The dynamic settings pgha manages: bootstrap.dcs of the rendered config (one source for both). */
export function wantedDynamicConfig(ctx: ApplyContext, h: Host): Record<string, Json> {
  return (parse(renderedFile(ctx, h, PATRONI_CONFIG).content) as { bootstrap: { dcs: Record<string, Json> } }).bootstrap.dcs;
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

/** GET /config of the member on `h`, asked from `conn`. */
export async function liveDynamicConfig(inv: Inventory, conn: Connection, h: Host): Promise<Record<string, Json>> {
  const r = await httpFrom(conn, 'GET', restapiUrl(inv, h, '/config'));
  if (r.status !== 200) throw new PghaError(`${h.name}: Patroni answered ${r.status} to GET /config`);
  return JSON.parse(r.body) as Record<string, Json>;
}

/** PATCH /config with the REST API credentials (over stdin). */
export async function patchDynamicConfig(inv: Inventory, conn: Connection, h: Host, patch: Record<string, Json>): Promise<void> {
  const r = await httpFrom(conn, 'PATCH', restapiUrl(inv, h, '/config'), { body: patch, auth: inv, timeoutSec: 30 });
  if (r.status !== 200) throw new PghaError(`${h.name}: Patroni answered ${r.status} to PATCH /config: ${conn.masker.mask(r.body).slice(0, 300)}`);
}

/** The op that PATCHes the live dynamic config to the wanted one; notes parameters that need a restart. */
export function dynamicConfigOp(ctx: ApplyContext, leader: Host): Operation {
  const { inv } = ctx.session;
  const diff = async () => dynamicConfigPatch(await liveDynamicConfig(inv, ctx.session.conn(leader), leader), wantedDynamicConfig(ctx, leader));
  // The changed parameters that take effect only after a restart (asked read-only: check mode too).
  const needingRestart = async (conn: Connection, patch: Record<string, Json>) => {
    const params = Object.keys(((patch.postgresql ?? {}) as Record<string, Json>).parameters ?? {});
    if (!params.length) return [];
    const list = params.map((p) => `'${p.replace(/'/g, "''")}'`).join(',');
    return (await sqlLocal(inv, conn, `select name from pg_settings where context = 'postmaster' and name in (${list}) order by name`)).stdout.split('\n').filter(Boolean);
  };
  const record = (restart: string[]) => {
    ctx.pendingRestart.push(...restart);
    if (restart.length && !ctx.restartPending) ctx.notes.push(pendingRestartNote(restart, ctx.inventoryFile));
  };
  return {
    describe: 'dynamic configuration (PATCH /config)',
    async check(conn) {
      const { patch, changes } = await diff();
      if (changes.length && ctx.rollout.check) record(await needingRestart(conn, patch));
      return changes.length ? { summary: changes.join(', ') } : null;
    },
    async apply(conn) {
      const { patch } = await diff();
      await patchDynamicConfig(inv, conn, leader, patch);
      record(await needingRestart(conn, patch));
    },
  };
}

/** "a", "a and b", "a, b and c" */
function listing(items: string[]): string {
  return items.length <= 1 ? items.join('') : `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

/**
 * What to do about parameters that need a PostgreSQL restart: `pgha restart` (or apply with
 * --restart-pending) restarts the replicas one at a time, switches over to a restarted one and
 * restarts the old leader. (`patronictl restart --pending` for the whole cluster would restart the
 * leader first, failing writes meanwhile.)
 */
export function pendingRestartNote(params: string[], inventoryFile?: string): string {
  const inv = shellQuote(inventoryFile ?? 'INVENTORY');
  return (
    `pending restart: ${listing(params)} ${params.length === 1 ? 'takes' : 'take'} effect only after PostgreSQL restarts. ` +
    `\`pgha restart -i ${inv}\` restarts the members one at a time without a write outage beyond one switchover ` +
    `(the replicas, a switchover to a restarted one, the old leader); \`pgha restart -i ${inv} --check\` shows the order, ` +
    'and `pgha apply --restart-pending` applies and restarts in one run'
  );
}

/**
 * Settings a hot standby may not run lower than its primary: PostgreSQL refuses to start it with
 * less, so Patroni starts a replica with the primary's value (from pg_controldata) and keeps it
 * marked pending_restart. Lowering one therefore needs the primary restarted with it first.
 */
export const STANDBY_MINIMUM_SETTINGS = ['max_connections', 'max_prepared_transactions', 'max_locks_per_transaction', 'max_worker_processes', 'max_wal_senders'] as const;

/**
 * The standby-minimum settings that `wanted` (PostgreSQL parameters; default: the live dynamic
 * configuration's) lowers below what the leader runs (empty: none).
 */
export async function loweredStandbyMinimums(
  inv: Inventory,
  leaderConn: Connection,
  leader: Host,
  wantedParameters?: Record<string, Json>,
): Promise<{ name: string; running: number; wanted: number }[]> {
  const wanted = (wantedParameters ?? liveConfigParameters(await liveDynamicConfig(inv, leaderConn, leader)) ?? {}) as Record<string, Json>;
  const list = STANDBY_MINIMUM_SETTINGS.map((n) => `'${n}'`).join(',');
  const rows = (await sqlLocal(inv, leaderConn, `select name || '=' || setting from pg_settings where name in (${list}) order by name`)).stdout.split('\n').filter(Boolean);
  return rows.flatMap((row) => {
    const [name, running] = row.split('=');
    const w = Number.parseInt(String(wanted[name] ?? ''), 10);
    return Number.isFinite(w) && w < Number(running) ? [{ name, running: Number(running), wanted: w }] : [];
  });
}

const liveConfigParameters = (cfg: Record<string, Json>) => ((cfg.postgresql ?? {}) as Record<string, Json>).parameters;
