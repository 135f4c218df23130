// Fault scenarios against the container lab's cluster, each measured by the checker: a writer
// through HAProxy and a probe on every member for the whole scenario, then the final count,
// the time until every member streams again, and `pgha verify`.
// Used by test/cluster/faults.test.ts and the opt-in test/faults/etcd3-trap.ts.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import * as lab from '../lab/lab.js';
import { PGHA_CLI, pgha, REPO } from '../helpers.js';
import { loadInventory, type Inventory } from '../../src/inventory/index.js';
import { openSession } from '../../src/session/session.js';
import { httpFrom } from '../../src/session/remote.js';
import { restapiUrl } from '../../src/components/patroni/paths.js';
import { CA_BUNDLE, caPaths, certFile, keyFile } from '../../src/components/tls/paths.js';
import { Checker, connect, lostTiming, problems, type CheckReport, type Credentials, type Endpoint, type Member, type MemberProbe } from './checker.js';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface FaultContext {
  inventory: string;
  inv: Inventory;
  members: Member[];
  /** HAProxy primary ports of every HAProxy host. */
  haproxy: (Endpoint & { name: string })[];
  cred: Credentials;
  /** The cluster CA (PEM) when the cluster runs TLS. */
  ca?: string;
  log: (s: string) => void;
  /** The ttl Patroni runs with (its dynamic configuration: Patroni 3.2 and later raise the profile's below 20 s). */
  ttl: number;
}

export async function faultContext(inventory: string, log: (s: string) => void = (s) => console.log(s)): Promise<FaultContext> {
  const inv = await loadInventory(inventory);
  if (!inv.secrets?.superuser_password) throw new Error('the inventory has no superuser password');
  const ca = inv.tls.enabled ? readFileSync(caPaths(inv).cert, 'utf8') : undefined;
  return {
    ca,
    inventory,
    inv,
    members: inv.hostsWithRole('postgres').map((h) => ({ name: h.name, host: h.address, port: inv.patroni.postgres_port })),
    haproxy: inv.hostsWithRole('haproxy').map((h) => ({ name: h.name, host: h.address, port: inv.haproxy.primary_port })),
    cred: { user: inv.patroni.users.superuser, password: inv.secrets.superuser_password, ca },
    log,
    ttl: (await liveTtl(inv, ca)) ?? inv.timing.patroni.ttl,
  };
}

/** GET /config's ttl from the first member that answers (what pgha wrote there: what Patroni runs with); null when none answers. */
async function liveTtl(inv: Inventory, ca: string | undefined): Promise<number | null> {
  for (const h of inv.hostsWithRole('postgres')) {
    try {
      const ttl = ((await getJson(restapiUrl(inv, h, '/config'), 2000, ca)) as { ttl?: unknown }).ttl;
      if (typeof ttl === 'number') return ttl;
    } catch {
      // next member
    }
  }
  return null;
}

// ---------------------------------------------------------------- cluster state, asked from the test host

export interface RestMember {
  name: string;
  role: string;
  state: string;
  lag?: number | string;
  timeline?: number;
}

/** GET a JSON document; https is verified against `ca` (the cluster CA). */
export async function getJson(url: string, timeoutMs = 2000, ca?: string): Promise<unknown> {
  if (!url.startsWith('https:')) {
    const r = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    if (!r.ok) throw new Error(`${url}: ${r.status}`);
    return r.json();
  }
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        if (!res.statusCode || res.statusCode >= 300) reject(new Error(`${url}: ${res.statusCode}`));
        else {
          try {
            resolve(JSON.parse(body));
          } catch (err) {
            reject(err);
          }
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${url}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * GET an etcd URL path from an etcd host itself (with TLS, etcd wants a client certificate: the
 * member's own, as root), e.g. `/health` or `/v2/keys/...`; the parsed JSON.
 */
export async function etcdGet(ctx: FaultContext, host: string, path: string, timeoutMs = 5000): Promise<unknown> {
  const h = ctx.inv.host(host);
  const tls = ctx.inv.tls.enabled;
  const url = `${tls ? 'https' : 'http'}://${h.address}:${ctx.inv.etcd.client_port}${path}`;
  const flags = tls ? `--cacert ${CA_BUNDLE} --cert ${certFile('etcd')} --key ${keyFile('etcd')}` : '';
  const r = await lab.ssh(host, `sudo curl -sS --max-time ${Math.ceil(timeoutMs / 1000)} ${flags} '${url}'`, { timeoutMs: timeoutMs + 10_000 });
  if (r.code !== 0) throw new Error(`${host}: ${url}: ${r.stderr.trim()}`);
  return JSON.parse(r.stdout);
}

/** GET /cluster from the first member that answers. */
export async function clusterView(ctx: FaultContext): Promise<RestMember[] | null> {
  for (const h of ctx.inv.hostsWithRole('postgres')) {
    try {
      return ((await getJson(restapiUrl(ctx.inv, h, '/cluster'), 2000, ctx.ca)) as { members: RestMember[] }).members;
    } catch {
      // next member
    }
  }
  return null;
}

export async function leaderName(ctx: FaultContext, timeoutMs = 120_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const members = await clusterView(ctx);
    const leader = members?.find((m) => m.role === 'leader' && (m.state === 'running' || m.state === 'streaming'));
    if (leader) return leader.name;
    if (Date.now() > deadline) throw new Error('no Patroni leader');
    await sleep(500);
  }
}

/** Every member running, each non-leader streaming from the leader within the lag limit; true or the reason. */
export async function allStreaming(ctx: FaultContext): Promise<true | string> {
  const members = await clusterView(ctx);
  if (!members) return 'no Patroni REST API answers';
  const leader = members.find((m) => m.role === 'leader' && (m.state === 'running' || m.state === 'streaming'));
  if (!leader) return 'no leader';
  const lm = ctx.members.find((m) => m.name === leader.name);
  if (!lm) return `leader ${leader.name} is not a member of the inventory`;
  let streaming: string[];
  try {
    const c = await connect(lm, ctx.cred, 2000);
    try {
      streaming = (await c.query<{ application_name: string }>("select application_name from pg_stat_replication where state = 'streaming'")).rows.map((r) => r.application_name);
    } finally {
      await c.end().catch(() => {});
    }
  } catch (err) {
    return `leader ${leader.name}: ${err instanceof Error ? err.message : String(err)}`;
  }
  const wrong: string[] = [];
  for (const m of ctx.members) {
    const rm = members.find((x) => x.name === m.name);
    if (!rm) wrong.push(`${m.name} is not a member`);
    else if (rm.state !== 'running' && rm.state !== 'streaming') wrong.push(`${m.name} is ${rm.state}`);
    else if (m.name !== leader.name) {
      if (!streaming.includes(m.name)) wrong.push(`${m.name} does not stream`);
      else if (typeof rm.lag !== 'number' || rm.lag > ctx.inv.patroni.maximum_lag_on_failover) wrong.push(`${m.name} lags ${rm.lag}`);
    }
  }
  return wrong.length ? wrong.join('; ') : true;
}

export async function waitAllStreaming(ctx: FaultContext, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: true | string = 'not asked yet';
  while (Date.now() < deadline) {
    last = await allStreaming(ctx);
    if (last === true) return;
    await sleep(1000);
  }
  throw new Error(`members do not all stream after ${timeoutMs / 1000} s: ${last}`);
}

/** `pgha verify`, retried for a while: HAProxy may still be moving its checks after a recovery. */
export async function verify(ctx: FaultContext, attempts = 6): Promise<{ ok: boolean; out: string }> {
  let out = '';
  for (let i = 0; i < attempts; i++) {
    const r = await pgha(['verify', '-i', ctx.inventory], { timeoutMs: 5 * 60_000 });
    out = r.stdout + r.stderr;
    if (r.code === 0) return { ok: true, out };
    await sleep(5000);
  }
  return { ok: false, out };
}

export async function sh(name: string, cmd: string, timeoutMs = 60_000): Promise<string> {
  const r = await lab.ssh(name, cmd, { timeoutMs });
  if (r.code !== 0) throw new Error(`${name}: ${cmd}: exit ${r.code}: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

/**
 * Whole WAL segments in the backup repository that hold WAL of a timeline written after a newer
 * timeline forked from it (an old primary's last writes). A replica catching up from the archive
 * could replay them and never follow the new leader; pgha's archive_command keeps them out.
 */
export async function divergedInArchive(ctx: FaultContext): Promise<string[]> {
  const repo = ctx.inv.repositoryHost ?? ctx.inv.hostsWithRole('postgres')[0];
  const dir = `${ctx.inv.pgbackrest.repository.path}/archive/${ctx.inv.pgbackrest.stanza}`;
  const out = await sh(repo.name, `sudo sh -c 'cd ${dir} && find . -type f -name "*-*" -printf "%f\\n"; for h in */*.history; do [ -f "$h" ] && sed "s/^/H /" "$h"; done; true'`);
  const forks = new Map<number, bigint>();
  const segments: string[] = [];
  for (const line of out.split('\n')) {
    const h = line.match(/^H (\d+)\s+([0-9A-F]+)\/([0-9A-F]+)/);
    if (h) forks.set(Number(h[1]), (BigInt(`0x${h[2]}`) << 32n) + BigInt(`0x${h[3]}`));
    const seg = line.match(/^([0-9A-F]{24})-[0-9a-f]{40}/);
    if (seg) segments.push(seg[1]);
  }
  const size = 16n * 1024n * 1024n; // pgha does not change wal_segment_size
  return segments.filter((name) => {
    const fork = forks.get(parseInt(name.slice(0, 8), 16));
    if (fork === undefined) return false;
    const end = (BigInt(`0x${name.slice(8, 16)}`) << 32n) + (BigInt(`0x${name.slice(16, 24)}`) + 1n) * size;
    return end > fork;
  });
}

// ---------------------------------------------------------------- scenarios

export interface ScenarioResult {
  scenario: string;
  profile: string;
  unavailabilityS: number;
  acknowledged: number;
  lost: number;
  duplicated: number;
  doublePrimary: number;
  /** Writes refused as read-only through HAProxy's primary port (the port sent the client to a server that does not accept writes). */
  readOnlyErrors: number;
  streamAgainS: number | null;
  verified: boolean;
  leaderBefore: string;
  leaderAfter: string;
  notes: string;
  problems: string[];
}

export interface FaultRun {
  leader: string;
  checker: Checker;
  t0: number;
  /** Text for the notes column. */
  note: (s: string) => void;
}

export interface ScenarioOptions {
  /** Replaces the direct write probe (the etcd3 trap keeps the default). */
  probe?: MemberProbe;
  /** Extra time with writes after every member streams again and writes resumed (s; default 1). */
  settleS?: number;
  /** The writer's and probe's credentials, from the context's (a cluster moving to TLS, a CA rotation). */
  cred?: (c: Credentials) => Credentials;
}

/**
 * One scenario from a verified cluster: start the checker, wait for steady writes, run the
 * fault (which also repairs what it broke), wait until every member streams, let writes
 * continue, stop and count, verify. Never throws for a failed check: the result says it.
 */
export async function runScenario(ctx: FaultContext, scenario: string, fault: (r: FaultRun) => Promise<void>, opts: ScenarioOptions = {}): Promise<{ result: ScenarioResult; report: CheckReport; verifyOut: string }> {
  await waitAllStreaming(ctx, 300_000);
  const leader = await leaderName(ctx);
  const divergedBefore = new Set(await divergedInArchive(ctx));
  // A real application lists every HAProxy address; start with one that is not on the leader.
  const haproxy = [...ctx.haproxy.filter((h) => h.name !== leader), ...ctx.haproxy.filter((h) => h.name === leader)];
  const checker = await Checker.start({ writeEndpoints: haproxy, members: ctx.members, cred: opts.cred ? opts.cred(ctx.cred) : ctx.cred, probe: opts.probe });
  const notes: string[] = [];
  let streamAgainS: number | null = null;
  let faultError: unknown;
  // Steady writes before the fault: 20 acknowledged (under a second at the writer's pace).
  if (!(await checker.waitForAcks(0, 20, 60_000))) notes.push('writes did not start within 60 s');
  const t0 = Date.now();
  ctx.log(`${scenario}: leader ${leader}, fault at ${new Date(t0).toISOString()}`);
  try {
    await fault({ leader, checker, t0, note: (s) => notes.push(s) });
    await waitAllStreaming(ctx, 300_000);
    streamAgainS = Math.round((Date.now() - t0) / 100) / 10;
    const since = Date.now();
    if (!(await checker.waitForAcks(since, 20, 60_000))) notes.push('writes did not resume within 60 s after recovery');
    await sleep((opts.settleS ?? 1) * 1000);
  } catch (err) {
    faultError = err;
    notes.push(`scenario error: ${err instanceof Error ? err.message : String(err)}`);
  }
  const report = await checker.finish();
  if (report.lost.length) notes.push(lostTiming(checker.writer.acks, report.lost, t0));
  const diverged = (await divergedInArchive(ctx)).filter((s) => !divergedBefore.has(s));
  // Evidence for the report: which member pushed it, and what Patroni and the wrapper logged around it.
  for (const seg of diverged) {
    for (const m of ctx.members) {
      const r = await lab.ssh(m.name, `sudo journalctl -u patroni -o short-iso-precise --no-pager --since @${Math.floor(t0 / 1000) - 60} | grep -E '${seg}|pgha archive-push|emot|/primary' | grep -v 'no action' | tail -20`, { timeoutMs: 30_000 });
      if (r.stdout.trim()) ctx.log(`${scenario}: ${seg} on ${m.name}:\n${r.stdout.trim()}`);
    }
  }
  const v = faultError ? { ok: false, out: 'not run: the scenario failed' } : await verify(ctx);
  const result: ScenarioResult = {
    scenario,
    profile: ctx.inv.timing.profile,
    unavailabilityS: report.unavailabilityS,
    acknowledged: report.acknowledged,
    lost: report.lost.length,
    duplicated: report.duplicated.length,
    doublePrimary: report.doublePrimaryMoments.length,
    readOnlyErrors: report.readOnlyErrors,
    streamAgainS,
    verified: v.ok,
    leaderBefore: leader,
    leaderAfter: report.finalLeader,
    notes: notes.join('; '),
    problems: [
      ...problems(report),
      ...(v.ok ? [] : ['the cluster does not verify afterwards']),
      ...(diverged.length ? [`WAL written after a timeline fork reached the archive: ${diverged.join(', ')}`] : []),
    ],
  };
  ctx.log(`${scenario}: ${JSON.stringify(result)}${report.errors.length ? `\n  writer errors: ${report.errors.join(' | ')}` : ''}`);
  return { result, report, verifyOut: v.out };
}

/** Waits until the writer has `n` acknowledgements after `since`, for at most timeoutMs; the time it took (s) or null. */
async function writesResumed(r: FaultRun, since: number, timeoutMs: number): Promise<number | null> {
  return (await r.checker.waitForAcks(since, 5, timeoutMs)) ? Math.round((Date.now() - since) / 100) / 10 : null;
}

const ttl = (ctx: FaultContext) => ctx.ttl;

/**
 * Where the time goes: when a member other than `old` is Patroni's running leader (asked over the
 * REST API from the test host), in seconds after `since`; null if not within timeoutMs.
 */
async function newLeaderAfter(ctx: FaultContext, old: string, since: number, timeoutMs: number): Promise<{ name: string; s: number } | null> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const members = await clusterView(ctx);
    const l = members?.find((m) => m.role === 'leader' && m.name !== old && (m.state === 'running' || m.state === 'streaming'));
    if (l) return { name: l.name, s: Math.round((Date.now() - since) / 100) / 10 };
    await sleep(250);
  }
  return null;
}

export function partitionLeader(ctx: FaultContext) {
  return async (r: FaultRun) => {
    const cut = Date.now();
    lab.partition(r.leader);
    try {
      const [elected, resumed] = await Promise.all([newLeaderAfter(ctx, r.leader, cut, 120_000), writesResumed(r, cut, 120_000)]);
      r.note(elected ? `${elected.name} leader ${elected.s} s after the cut` : 'no new leader');
      r.note(resumed === null ? 'writes did not resume during the partition' : `writes resumed ${resumed} s after the cut`);
      // Stay cut off for longer than ttl in any case, and a bit past the new leader's start.
      const minCut = (ttl(ctx) + 10) * 1000;
      const left = r.t0 + minCut - Date.now();
      if (left > 0) await sleep(left);
      await sleep(5000);
    } finally {
      lab.heal(r.leader);
    }
  };
}

export function poweroffLeader(ctx: FaultContext) {
  return async (r: FaultRun) => {
    const off = Date.now();
    await lab.poweroff(r.leader);
    try {
      const [elected, resumed] = await Promise.all([newLeaderAfter(ctx, r.leader, off, 120_000), writesResumed(r, off, 120_000)]);
      r.note(elected ? `${elected.name} leader ${elected.s} s after the power loss` : 'no new leader');
      r.note(resumed === null ? 'writes did not resume while powered off' : `writes resumed ${resumed} s after the power loss`);
      await sleep(5000);
    } finally {
      await lab.start(r.leader);
    }
  };
}

export function killPostmaster() {
  return async (r: FaultRun) => {
    const dataDir = await sh(r.leader, "sudo -u postgres psql -XAtc 'show data_directory'");
    await sh(r.leader, `sudo sh -c 'kill -9 $(head -1 ${dataDir}/postmaster.pid)'`);
    const killed = Date.now();
    await sleep(500);
    const resumed = await writesResumed(r, killed, 120_000);
    r.note(resumed === null ? 'writes did not resume' : `writes resumed after ${resumed} s`);
  };
}

export function killPatroni(ctx: FaultContext) {
  return async (r: FaultRun) => {
    const pid = await sh(r.leader, 'systemctl show -p MainPID --value patroni');
    await sh(r.leader, `sudo kill -9 ${Number(pid)}`);
    // Long enough for the leader key to expire if nobody renewed it.
    await sleep((ttl(ctx) + 5) * 1000);
    const now = await sh(r.leader, 'systemctl show -p MainPID --value patroni');
    r.note(`Patroni ${now !== '0' && now !== pid ? 'restarted by systemd' : 'not running again'}`);
  };
}

/** Stops one etcd member, then a second (quorum lost), then starts both again. Reports what the primary did. */
export function etcdQuorum(ctx: FaultContext) {
  return async (r: FaultRun) => {
    const etcd = ctx.inv.hostsWithRole('etcd').map((h) => h.name);
    const victims = [...etcd.filter((n) => n !== r.leader)].slice(0, 2);
    await sh(victims[0], 'sudo systemctl stop etcd');
    await sleep(15_000);
    const oneGap = gapSince(r.checker, r.t0);
    r.note(`one etcd member stopped: longest write gap ${oneGap} s`);
    const t1 = Date.now();
    await sh(victims[1], 'sudo systemctl stop etcd');
    try {
      await sleep((ttl(ctx) * 2 + 10) * 1000);
      const acks = r.checker.writer.acksAfter(t1);
      const gap = gapSince(r.checker, t1);
      const members = await clusterView(ctx);
      r.note(
        `quorum lost for ${Math.round((Date.now() - t1) / 1000)} s: ${acks} writes acknowledged, longest gap ${gap} s` +
          ` (${gap < ttl(ctx) ? 'the primary kept serving (failsafe mode)' : 'the primary stopped serving'}); roles then: ${members?.map((m) => `${m.name} ${m.role}`).join(', ') ?? 'no REST answer'}`,
      );
    } finally {
      await Promise.all(victims.map((v) => sh(v, 'sudo systemctl start --no-block etcd')));
    }
    await waitEtcdHealthy(ctx, 120_000);
  };
}

function gapSince(c: Checker, from: number): number {
  const acks = c.writer.acks.filter((a) => a.at > from);
  let prev = from;
  let gap = 0;
  for (const a of acks) {
    gap = Math.max(gap, a.at - prev);
    prev = a.at;
  }
  gap = Math.max(gap, Date.now() - prev);
  return Math.round(gap / 100) / 10;
}

export async function waitEtcdHealthy(ctx: FaultContext, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const hosts = ctx.inv.hostsWithRole('etcd');
  for (;;) {
    const ok = await Promise.all(
      hosts.map(async (h) => {
        try {
          return ((await etcdGet(ctx, h.name, '/health')) as { health: string }).health === 'true';
        } catch {
          return false;
        }
      }),
    );
    if (ok.every(Boolean)) return;
    if (Date.now() > deadline) throw new Error(`etcd members not healthy after ${timeoutMs / 1000} s: ${hosts.filter((_, i) => !ok[i]).map((h) => h.name).join(', ')}`);
    await sleep(1000);
  }
}

/** A planned switchover (POST /switchover, asked on the leader host) to the first replica. */
export function switchover(ctx: FaultContext) {
  return async (r: FaultRun) => {
    const candidate = ctx.members.find((m) => m.name !== r.leader)!.name;
    const session = await openSession(ctx.inv, { hosts: [ctx.inv.host(r.leader)] });
    try {
      const res = await httpFrom(session.conn(r.leader), 'POST', restapiUrl(ctx.inv, ctx.inv.host(r.leader), '/switchover'), {
        body: { leader: r.leader, candidate },
        auth: ctx.inv,
        timeoutSec: 60,
      });
      r.note(`POST /switchover to ${candidate}: ${res.status} ${res.body.trim().slice(0, 80)}`);
      // 503 "status unknown": Patroni stopped waiting for the outcome, the switchover may still complete.
      if (res.status !== 200 && !(res.status === 503 && /unknown/i.test(res.body))) throw new Error(`switchover answered ${res.status}: ${res.body}`);
    } finally {
      await session.close();
    }
    const deadline = Date.now() + 120_000;
    let now = await leaderName(ctx, 120_000);
    while (now !== candidate && Date.now() < deadline) {
      await sleep(500);
      now = await leaderName(ctx, 120_000);
    }
    if (now !== candidate) throw new Error(`after the switchover the leader is ${now}, not ${candidate}`);
    r.note(`switchover request took ${Math.round((Date.now() - r.t0) / 100) / 10} s`);
  };
}

/**
 * `pgha switchover` (the shared switchover action: HAProxy drain, Patroni, routing) to the first
 * replica, or the one `pick` chooses among the replicas (inventory order); notes the time pgha reports.
 */
export function pghaSwitchover(ctx: FaultContext, pick: (replicas: string[]) => string = (rs) => rs[0]) {
  return async (r: FaultRun) => {
    const candidate = pick(ctx.members.filter((m) => m.name !== r.leader).map((m) => m.name));
    const res = await pgha(['switchover', '-i', ctx.inventory, '--candidate', candidate, '--yes'], { timeoutMs: 5 * 60_000 });
    if (res.code !== 0) throw new Error(`pgha switchover exit ${res.code}: ${(res.stdout + res.stderr).trim()}`);
    const done = /switchover done: \S+ -> \S+ in ([\d.]+)s/.exec(res.stdout);
    r.note(`pgha switchover to ${candidate}: done in ${done?.[1] ?? '?'} s`);
    for (const line of res.stdout.split('\n').filter((l) => /not drained|HAProxy on .* answered|runtime API/.test(l))) r.note(line.trim());
  };
}

/**
 * Cuts a replica off for longer than ttl, then heals it. By default the last replica: the writer
 * uses the first non-leader's HAProxy, and a client losing its HAProxy host is not what this
 * scenario measures (the chaos soak picks one by its seed).
 */
export function partitionReplica(ctx: FaultContext, pick: (replicas: string[]) => string = (rs) => rs.at(-1)!) {
  return async (r: FaultRun) => {
    const replica = pick(ctx.members.filter((m) => m.name !== r.leader).map((m) => m.name));
    r.note(`partitioned ${replica}`);
    lab.partition(replica);
    try {
      await sleep((ttl(ctx) + 10) * 1000);
    } finally {
      lab.heal(replica);
    }
  };
}

// ---------------------------------------------------------------- interrupted deploys

export interface KillPoint {
  name: string;
  /** Kill when apply's output matches this... */
  when: RegExp;
  /** ...this long after the match (ms). */
  delayMs: number;
}

/** `pgha apply` killed (SIGKILL) `delayMs` after its output matches `when`. */
export async function applyKilledAt(inventory: string, point: KillPoint): Promise<{ killed: boolean; out: string }> {
  const { spawn } = await import('node:child_process');
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...PGHA_CLI, 'apply', '-i', inventory], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let armed = false;
    let killed = false;
    const watch = (d: Buffer) => {
      out += d;
      if (!armed && point.when.test(out)) {
        armed = true;
        setTimeout(() => {
          if (child.exitCode === null && child.signalCode === null) {
            killed = true;
            child.kill('SIGKILL');
          }
        }, point.delayMs);
      }
    };
    child.stdout.on('data', watch);
    child.stderr.on('data', watch);
    const timer = setTimeout(() => child.kill('SIGKILL'), 20 * 60_000);
    child.on('close', () => {
      clearTimeout(timer);
      resolve({ killed, out });
    });
  });
}

// ---------------------------------------------------------------- the results table

/** A markdown table: the header row, its rule, then the rows. */
export function markdownTable(head: string[], rows: string[][]): string {
  return [head, head.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

export function resultsTable(results: ScenarioResult[]): string {
  const head = ['scenario', 'profile', 'write unavailability (s)', 'writes acknowledged', 'writes lost', 'duplicates', 'double-primary moments', 'read-only errors (primary port)', 'all streaming again after (s)', 'verified', 'notes'];
  const rows = results.map((r) => [
    r.scenario,
    r.profile,
    r.unavailabilityS.toFixed(1),
    String(r.acknowledged),
    String(r.lost),
    String(r.duplicated),
    String(r.doublePrimary),
    String(r.readOnlyErrors ?? '-'),
    r.streamAgainS === null ? '-' : r.streamAgainS.toFixed(1),
    r.verified ? 'yes' : 'NO',
    r.notes.replace(/\|/g, '/'),
  ]);
  return markdownTable(head, rows);
}

export function writeResults(name: string, results: ScenarioResult[]): string {
  const dir = join(REPO, 'test-output');
  mkdirSync(dir, { recursive: true });
  const md = join(dir, `${name}.md`);
  writeFileSync(md, `# ${name}\n\n${resultsTable(results)}\n`);
  writeFileSync(join(dir, `${name}.json`), `${JSON.stringify(results, null, 2)}\n`);
  return md;
}

/**
 * The bar every change to a live cluster in a test is judged by: no scenario error, nothing
 * acknowledged lost or duplicated, never two primaries, writes acknowledged, verified afterwards.
 */
export function assertNothingLost(name: string, result: ScenarioResult, verifyOut = ''): void {
  assert.doesNotMatch(result.notes, /scenario error/, result.notes);
  assert.equal(result.lost, 0, `${name}: acknowledged writes lost: ${result.problems.join('; ')}`);
  assert.equal(result.duplicated, 0, `${name}: duplicated writes`);
  assert.equal(result.doublePrimary, 0, `${name}: ${result.problems.join('; ')}`);
  assert.ok(result.acknowledged > 0, `${name}: no write acknowledged`);
  assert.ok(result.verified, `${name}: the cluster does not verify afterwards:\n${verifyOut}`);
}
