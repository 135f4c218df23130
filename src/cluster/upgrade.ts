// The minor upgrade runbook (`pgha upgrade`): apt's settings and pins written, package lists
// refreshed, the plan (upgrade-plan.ts) and the preflight, then the turns in order, each host's
// packages installed at exactly the planned versions:
//   etcd members one at a time, the cluster healthy between;
//   HAProxy hosts one at a time, each routing to the leader again (running the new binary) before the next;
//   Patroni itself under maintenance mode (pause): restarted without restarting PostgreSQL;
//   PostgreSQL in a roll (roll.ts): replicas, a switchover, the old leader, each restarted on the
//   new binaries and back, streaming, caught up and reporting the new server_version;
//   the rest host by host (pgBackRest, the repository host).
// Versions before and after are read from dpkg on every host.
import { PghaError } from '../errors.js';
import { aptUpgrade, Rollout, Steps, waitFor, type Reporter } from '../engine/index.js';
import type { Host, Inventory } from '../inventory/index.js';
import type { Session } from '../session/session.js';
import type { Connection } from '../ssh/index.js';
import { sqlLocal } from '../session/remote.js';
import { fileOp } from '../render/op.js';
import { base } from '../components/base/index.js';
import type { Release } from '../components/base/release.js';
import { postgresMajor } from '../components/patroni/paths.js';
import { PATRONI_RELEASES } from '../components/patroni/version.js';
import { heldPackages, installedPackages, offeredVersions, simulatedUpgrade, upstreamVersion } from '../components/base/apt.js';
import { upgradesFor } from '../components/index.js';
import { etcdReady } from '../components/etcd/state.js';
import { haproxyServers, primaryRouteProblem } from '../components/haproxy/state.js';
import { currentLeader, patroniSelf } from '../components/patroni/cluster.js';
import { requestRestart, setPaused } from '../components/patroni/actions.js';
import { clusterView } from './leader-change.js';
import { liveSynchronousMode } from './restart.js';
import { planRoll, runRoll, type RollPlan } from './roll.js';
import { changeText, consideredPackages, hostChanges, installArgs, planHostUpgrade, TURNS, type HostUpgrade, type PackageChange, type Turn } from './upgrade-plan.js';

export interface UpgradeOptions {
  /** The cluster's Debian release (its PostgreSQL major, its packages). */
  release: Release;
  /** Everything `apt-get upgrade` would do, not only the stack. */
  all?: boolean;
  /** Seconds a member or service may take to come back. */
  timeoutSec: number;
}

// ---------------------------------------------------------------- before anything changes

/**
 * apt's settings and pins (the base component's files) as the inventory says, on every host; in
 * check mode only shown. Written first: the pins decide what apt may install from now on.
 */
export async function aptSettingsStage(session: Session, rollout: Rollout, release: Release): Promise<void> {
  // The base component's files depend on the release only (the pgdg suite), not on Patroni's version.
  const platform = { release, patroniVersions: [PATRONI_RELEASES[release.name].patroni] };
  await rollout.stage('apt settings and pins', [...session.conns.values()], (conn) =>
    base.files!({ inv: session.inv, host: session.inv.host(conn.target.name), dcs: 'etcd', platform }).map((f) => fileOp(f)),
  );
}

/** `apt-get update` on every host at once (bounded and tried again; apt's locks waited for). */
export async function refreshLists(session: Session, reporter: Reporter): Promise<void> {
  await Promise.all([...session.conns.values()].map((conn) => aptUpgrade(conn, [], { progress: (t) => reporter.progress(conn.target.name, t) })));
}

/** Every host's plan, from its facts (read-only). */
export async function planUpgrade(session: Session, opts: Pick<UpgradeOptions, 'all' | 'release'>): Promise<HostUpgrade[]> {
  const { inv } = session;
  return Promise.all(
    inv.hosts.map(async (h) => {
      const conn = session.conn(h);
      const [installed, held, others] = await Promise.all([installedPackages(conn), heldPackages(conn), opts.all ? simulatedUpgrade(conn) : Promise.resolve(null)]);
      const facts = { host: h.name, database: h.roles.has('postgres'), components: upgradesFor(inv, h, opts.release), installed, pins: inv.packages.versions, held, others };
      const offered = await offeredVersions(conn, consideredPackages(facts));
      return planHostUpgrade({ ...facts, offered });
    }),
  );
}

/** The plan as text: per host what would change, then the order. */
export function describeUpgrade(plans: HostUpgrade[], roll: RollPlan | undefined): string {
  const lines: string[] = [];
  for (const p of plans) {
    const changes = hostChanges(p);
    if (!changes.length) {
      lines.push(`${p.host}: up to date`);
      continue;
    }
    lines.push(`${p.host}:`);
    for (const t of TURNS) for (const c of p.turns[t] ?? []) lines.push(`  ${changeText(c)}  [${TURN_NAMES[t]}]`);
  }
  const order = upgradeOrder(plans, roll);
  lines.push(order.length ? `order:\n${order.map((l, i) => `  ${i + 1}. ${l}`).join('\n')}` : 'nothing to upgrade');
  return lines.join('\n');
}

const TURN_NAMES: Record<Turn, string> = { etcd: 'etcd', haproxy: 'HAProxy', patroni: 'Patroni, under pause', postgresql: 'PostgreSQL roll', host: 'no restart' };

const withTurn = (plans: HostUpgrade[], t: Turn) => plans.filter((p) => (p.turns[t] ?? []).length > 0);
const names = (cs: PackageChange[]) => cs.map((c) => c.name).join(', ');

function upgradeOrder(plans: HostUpgrade[], roll: RollPlan | undefined): string[] {
  const out: string[] = [];
  for (const p of withTurn(plans, 'etcd')) out.push(`etcd on ${p.host} (${names(p.turns.etcd!)}), restarted; etcd healthy before the next`);
  for (const p of withTurn(plans, 'haproxy')) out.push(`HAProxy on ${p.host} (${names(p.turns.haproxy!)}), reloaded onto the new binary; routing to the leader before the next`);
  const patroni = withTurn(plans, 'patroni');
  if (patroni.length) {
    out.push(
      `maintenance mode on (Patroni pause), then Patroni on ${patroni.map((p) => p.host).join(', ')} one at a time, restarted with PostgreSQL left running; maintenance mode off`,
    );
  }
  if (roll) {
    for (const r of roll.replicas) out.push(`PostgreSQL on ${r} (replica): packages, restart; streaming, caught up and on the new version before the next`);
    if (roll.leader?.switchover) {
      out.push(`switch over from ${roll.leader.name} to ${roll.synchronous ? 'the synchronous standby' : 'an upgraded, caught-up replica'} (writes pause for about 2 s)`);
      out.push(`PostgreSQL on ${roll.leader.name} (the old leader, now a replica): packages, restart`);
    } else if (roll.leader) {
      out.push(`PostgreSQL on ${roll.leader.name} (the leader) in place: no replica can take over, writes fail while it restarts`);
    }
  }
  for (const p of plans) {
    const rolled = roll && (roll.replicas.includes(p.host) || roll.leader?.name === p.host);
    if ((p.turns.host ?? []).length && !rolled) out.push(`${p.host}: ${names(p.turns.host!)} (nothing restarted)`);
  }
  return out;
}

/** The PostgreSQL roll's plan: the database hosts with changes that need PostgreSQL restarted. */
export async function planPostgresRoll(session: Session, plans: HostUpgrade[]): Promise<RollPlan | undefined> {
  const todo = new Set(withTurn(plans, 'postgresql').map((p) => p.host));
  if (!todo.size) return undefined;
  const cluster = await clusterView(session);
  return planRoll(session.inv, cluster, todo, await liveSynchronousMode(session, cluster));
}

// ---------------------------------------------------------------- the turns

/** A service's main process, as systemd says (0 when it does not run). */
async function mainPid(conn: Connection, unit: string): Promise<number> {
  return Number((await conn.run(['systemctl', 'show', '-p', 'MainPID', '--value', '--', unit], { sudo: false })).stdout.trim()) || 0;
}

/** The process runs a binary that was replaced on disk since it started (an upgrade it has not picked up). */
async function runsReplacedBinary(conn: Connection, pid: number): Promise<boolean> {
  if (!pid) return false;
  const r = await conn.run(['readlink', `/proc/${pid}/exe`], { check: false });
  return r.stdout.trim().endsWith(' (deleted)');
}

async function install(session: Session, steps: Steps, host: string, changes: PackageChange[]): Promise<void> {
  if (!changes.length) return;
  const conn = session.conn(host);
  await aptUpgrade(conn, installArgs(changes), { update: false, progress: (t) => steps.say(`  ${host}: ${t}`) });
  steps.mark(`${host}: installed ${changes.map((c) => `${c.name} ${c.to}`).join(', ')}`);
}

/**
 * One etcd member's turn: its package (`installOn`; tests reinstall the same version), etcd
 * restarted on it (Debian's etcd-server restarts etcd on upgrade; if nothing did, this does), then
 * every member healthy with one leader before the caller goes on to the next member.
 */
export async function etcdMemberTurn(session: Session, steps: Steps, host: string, installOn: () => Promise<void>, timeoutMs: number): Promise<void> {
  const conn = session.conn(host);
  const before = await mainPid(conn, 'etcd');
  await installOn();
  const now = await mainPid(conn, 'etcd');
  if (now === before || (await runsReplacedBinary(conn, now))) {
    await conn.run(['systemctl', 'restart', '--', 'etcd'], { timeoutMs });
    steps.mark(`${host}: etcd restarted`);
  }
  await waitFor('etcd: every member healthy, one leader', () => etcdReady(session), { timeoutMs, intervalMs: 1000 });
  steps.mark(`${host}: etcd runs again; every member healthy, one leader`);
}

async function haproxyTurn(session: Session, steps: Steps, p: HostUpgrade, timeoutMs: number): Promise<void> {
  const conn = session.conn(p.host);
  await install(session, steps, p.host, p.turns.haproxy!);
  // Debian's haproxy reloads itself on upgrade: its master re-executes the new binary and the
  // old workers finish their connections. If it still runs the old binary, reload it.
  if (await runsReplacedBinary(conn, await mainPid(conn, 'haproxy'))) {
    await conn.run(['systemctl', 'reload', '--', 'haproxy']);
    steps.mark(`${p.host}: HAProxy reloaded`);
  }
  await waitFor(
    `HAProxy on ${p.host} to run the new binary and route to the leader`,
    async () => {
      if (await runsReplacedBinary(conn, await mainPid(conn, 'haproxy'))) return 'HAProxy still runs the old binary';
      const leader = (await currentLeader(session))?.name;
      if (!leader) return 'no Patroni leader';
      return primaryRouteProblem(await haproxyServers(session.inv, conn), leader) ?? true;
    },
    { timeoutMs, intervalMs: 500 },
  );
  steps.mark(`${p.host}: HAProxy routes the primary port to the leader`);
}

/**
 * Patroni upgraded without restarting PostgreSQL: maintenance mode on (every member must have
 * seen it: a Patroni that stops while not paused stops its PostgreSQL), then on each host the new
 * package (Debian's postinst restarts Patroni; if it did not, this does), waiting until the member
 * is back with PostgreSQL still running since before; then maintenance mode off. `installOn` is
 * the install (tests reinstall the same version to exercise it).
 */
export async function patroniUnderPause(session: Session, steps: Steps, hosts: string[], installOn: (host: string) => Promise<void>, timeoutMs: number): Promise<void> {
  const { inv } = session;
  const askFrom = session.withRole('postgres')[0];
  const leader = await currentLeader(session);
  if (!leader) throw new PghaError('no running leader');
  await setPaused(inv, session.conn(leader.name), inv.host(leader.name), true);
  try {
    await waitFor(
      'every member in maintenance mode',
      async () => {
        const not = [];
        for (const h of inv.hostsWithRole('postgres')) if ((await patroniSelf(inv, askFrom, h)).pause !== true) not.push(h.name);
        return not.length ? `not paused yet: ${not.join(', ')}` : true;
      },
      { timeoutMs, intervalMs: 500 },
    );
    steps.mark('maintenance mode on (Patroni pause)');
    for (const host of hosts) {
      const h = inv.host(host);
      const conn = session.conn(host);
      const started = (await patroniSelf(inv, askFrom, h)).postmaster_start_time;
      const pid = await mainPid(conn, 'patroni');
      await installOn(host);
      if ((await mainPid(conn, 'patroni')) === pid) {
        await conn.run(['systemctl', 'restart', '--', 'patroni'], { timeoutMs });
      }
      await waitFor(
        `Patroni on ${host} to run again`,
        async () => {
          const self = await patroniSelf(inv, askFrom, h);
          if (self.state !== 'running') return `${host} is ${self.state}`;
          if (self.pause !== true) return `${host} does not see maintenance mode yet`;
          return true;
        },
        { timeoutMs, intervalMs: 500 },
      );
      const now = (await patroniSelf(inv, askFrom, h)).postmaster_start_time;
      if (started && now && now !== started) throw new PghaError(`${host}: PostgreSQL was restarted with Patroni (started ${started}, now ${now})`);
      steps.mark(`${host}: Patroni ${(await patroniSelf(inv, askFrom, h)).patroni?.version ?? ''} runs again; PostgreSQL kept running (up since ${now ?? '?'})`);
    }
  } finally {
    // Automatic failover back on, whatever happened above.
    const l = (await currentLeader(session).catch(() => undefined)) ?? leader;
    await setPaused(inv, session.conn(l.name), inv.host(l.name), false);
  }
  await waitFor(
    'maintenance mode off on every member',
    async () => {
      for (const h of inv.hostsWithRole('postgres')) if ((await patroniSelf(inv, askFrom, h)).pause === true) return `${h.name} is still paused`;
      return true;
    },
    { timeoutMs, intervalMs: 500 },
  );
  steps.mark('maintenance mode off');
}

/** The server version PostgreSQL reports on a member ("15.20 (Debian 15.20-0+deb12u1)"). */
export async function serverVersion(inv: Inventory, conn: Connection): Promise<string> {
  return (await sqlLocal(inv, conn, 'show server_version')).stdout.trim();
}

/** The PostgreSQL roll of an upgrade: each member's packages, then its restart, on the new version. */
async function postgresRoll(session: Session, steps: Steps, plans: HostUpgrade[], roll: RollPlan, timeoutSec: number, release: Release): Promise<void> {
  const { inv } = session;
  const planOf = (m: string) => plans.find((p) => p.host === m)!;
  const server = `postgresql-${postgresMajor(inv, release)}`;
  const changes = (m: string) => [...(planOf(m).turns.postgresql ?? []), ...(planOf(m).turns.host ?? [])];
  await runRoll(
    session,
    roll,
    {
      title: (m) => `upgrade PostgreSQL on ${m}: ${names(changes(m))}`,
      async act(m) {
        await install(session, steps, m, changes(m));
        const r = await requestRestart(inv, session.conn(m), inv.host(m), { timeoutSec });
        if (r.status !== 200) throw new PghaError(`Patroni on ${m} answered ${r.status} to POST /restart: ${r.body.trim() || '(no body)'}`);
        steps.mark(`Patroni restarted PostgreSQL on ${m}`, r.body.trim());
      },
      async ready(m) {
        const target = changes(m).find((c) => c.name === server)?.to;
        if (!target) return true;
        const v = await serverVersion(inv, session.conn(m));
        return v.split(' ')[0] === upstreamVersion(target) ? true : `${m} reports server_version ${v}, not ${upstreamVersion(target)} yet`;
      },
      // The switchover restarted the old leader before its packages changed: always do it.
      stillNeeded: async () => true,
    },
    steps,
    { memberTimeoutMs: timeoutSec * 1000 },
  );
}

export interface UpgradeResult {
  /** Per host: each changed package's version before and after (read from dpkg afterwards). */
  versions: { host: string; name: string; before: string; after: string }[];
}

/** The turns in order (after the preflight). */
export async function runUpgrade(session: Session, plans: HostUpgrade[], roll: RollPlan | undefined, steps: Steps, opts: UpgradeOptions): Promise<UpgradeResult> {
  const timeoutMs = opts.timeoutSec * 1000;
  const turn = (title: string, fn: () => Promise<void>) =>
    steps.step(title, fn).catch((err: unknown) => {
      throw new PghaError(`${title} failed: ${err instanceof Error ? err.message : String(err)}\nThe upgrade stopped there; the turns after it were not started (pgha upgrade again continues from what is installed).`);
    });
  for (const p of withTurn(plans, 'etcd')) {
    await turn(`upgrade etcd on ${p.host} (${names(p.turns.etcd!)})`, () => etcdMemberTurn(session, steps, p.host, () => install(session, steps, p.host, p.turns.etcd!), timeoutMs));
  }
  for (const p of withTurn(plans, 'haproxy')) await turn(`upgrade HAProxy on ${p.host} (${names(p.turns.haproxy!)})`, () => haproxyTurn(session, steps, p, timeoutMs));
  const patroni = withTurn(plans, 'patroni');
  if (patroni.length) {
    await turn(`upgrade Patroni on ${patroni.map((p) => p.host).join(', ')} under maintenance mode`, () =>
      patroniUnderPause(session, steps, patroni.map((p) => p.host), (host) => install(session, steps, host, plans.find((p) => p.host === host)!.turns.patroni!), timeoutMs),
    );
  }
  // The roll prints its own steps and says what it left untouched when it stops.
  if (roll) await postgresRoll(session, steps, plans, roll, opts.timeoutSec, opts.release);
  for (const p of plans) {
    const rolled = roll && (roll.replicas.includes(p.host) || roll.leader?.name === p.host);
    if ((p.turns.host ?? []).length && !rolled) await turn(`upgrade ${names(p.turns.host!)} on ${p.host}`, () => install(session, steps, p.host, p.turns.host!));
  }
  const versions: UpgradeResult['versions'] = [];
  for (const p of plans) {
    const changes = hostChanges(p);
    if (!changes.length) continue;
    const now = await installedPackages(session.conn(p.host));
    for (const c of changes) versions.push({ host: p.host, name: c.name, before: c.from, after: now.get(c.name)?.version ?? '(not installed)' });
  }
  return { versions };
}

/** "node1 postgresql-15 15.18-0+deb12u1 -> 15.20-0+deb12u1" lines, aligned. */
export function versionsTable(rows: UpgradeResult['versions'], hosts: Host[]): string {
  const w = (f: (r: UpgradeResult['versions'][number]) => string) => Math.max(0, ...rows.map((r) => f(r).length));
  const [wh, wn, wb] = [w((r) => r.host), w((r) => r.name), w((r) => r.before)];
  const lines = rows.map((r) => `  ${r.host.padEnd(wh)}  ${r.name.padEnd(wn)}  ${r.before.padEnd(wb)} -> ${r.after}`);
  const untouched = hosts.filter((h) => !rows.some((r) => r.host === h.name)).map((h) => h.name);
  if (untouched.length) lines.push(`  unchanged: ${untouched.join(', ')}`);
  return lines.join('\n');
}
