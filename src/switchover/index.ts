// `pgha switchover` and `pgha failover`: pre-checks, a confirmation, Patroni's POST /switchover or
// /failover (with the REST API credentials, over stdin), then waiting until the change is done
// end to end: the new leader is primary, every HAProxy routes its primary port to it, and the
// old leader streams from it. Prints each step and how long it took.
import { confirm } from '@inquirer/prompts';
import { loadInventory } from '../inventory/index.js';
import { EXIT, InputError, PghaError } from '../errors.js';
import type { Session } from '../cluster/session.js';
import { anyPatroniCluster, haproxyServers, httpFrom, restapiUrl, sqlLocal, type PatroniCluster } from '../cluster/probes.js';
import { connectEach } from '../status/reach.js';
import { checkSwitchover, findMember, parseAt, runningLeader } from './checks.js';

export { candidateProblem, checkSwitchover, findMember, parseAt, runningLeader } from './checks.js';

export interface ChangeOptions {
  candidate?: string;
  yes?: boolean;
  /** Whether a confirmation can be asked (default: stdin and stdout are terminals). */
  tty?: boolean;
  out?: (text: string) => void;
  /** How long to wait for the change to complete end to end. */
  waitMs?: number;
}

const secs = (ms: number) => `${(ms / 1000).toFixed(1)}s`;
const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));

/** Checked before any host is contacted: without a terminal nobody can confirm. */
function needConfirmation(command: string, opts: ChangeOptions): boolean {
  if (opts.yes) return false;
  if (!(opts.tty ?? (process.stdin.isTTY === true && process.stdout.isTTY === true))) {
    throw new InputError(`${command} changes the leader and needs a confirmation, but there is no terminal to ask on: add --yes to go ahead without asking`);
  }
  return true;
}

async function ask(message: string): Promise<void> {
  let ok: boolean;
  try {
    ok = await confirm({ message, default: false });
  } catch (err) {
    if (err instanceof Error && err.name === 'ExitPromptError') throw new PghaError('interrupted: nothing was changed', EXIT.interrupted);
    throw err;
  }
  if (!ok) throw new PghaError('not confirmed: nothing was changed');
}

async function clusterView(session: Session): Promise<{ from: string; cluster: PatroniCluster }> {
  const found = await anyPatroniCluster(session.inv, (h) => session.conns.get(h.name));
  if (!found) throw new PghaError('no Patroni REST API answers on any reachable database host');
  return { from: found.from.name, cluster: found.cluster };
}

/** Names of the members the leader's PostgreSQL sees streaming; undefined when it cannot be asked. */
async function streamingFrom(session: Session, leader: string): Promise<Set<string> | undefined> {
  const conn = session.conns.get(leader);
  if (!conn) return undefined;
  const r = await sqlLocal(session.inv, conn, "select application_name from pg_stat_replication where state = 'streaming'", { check: false });
  return r.code === 0 ? new Set(r.stdout.split('\n').filter(Boolean)) : undefined;
}

/** A connection to ask Patroni's REST API from: the host itself, else any reachable database host. */
function askFrom(session: Session, preferred: string) {
  return session.conns.get(preferred) ?? session.withRole('postgres')[0] ?? (() => { throw new PghaError('no database host is reachable'); })();
}

interface Step {
  what: string;
  atMs?: number;
}

/**
 * Waits until a leader other than `oldLeader` runs as primary, every reachable HAProxy routes its
 * primary port to it, and (when it is reachable) the old leader streams from it. Returns the new leader.
 */
async function waitForChange(session: Session, oldLeader: string | undefined, started: number, waitMs: number, out: (t: string) => void): Promise<string> {
  const { inv } = session;
  const haproxy = session.withRole('haproxy');
  const skipped = inv.hostsWithRole('haproxy').filter((h) => !session.conns.has(h.name)).map((h) => h.name);
  let leader: string | undefined;
  const steps: Record<'primary' | 'haproxy' | 'old', Step> = { primary: { what: '' }, haproxy: { what: '' }, old: { what: '' } };
  // Nothing to wait for when there was no old leader or it is unreachable.
  const oldReachable = oldLeader !== undefined && session.conns.has(oldLeader);
  const report = (s: Step, text: string) => {
    s.atMs = Date.now() - started;
    s.what = text;
    out(`  ${text} after ${secs(s.atMs)}\n`);
  };
  const deadline = started + waitMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      if (steps.primary.atMs === undefined) {
        const { cluster } = await clusterView(session);
        const l = runningLeader(cluster);
        if (l && l.name !== oldLeader) {
          const conn = askFrom(session, l.name);
          const h = inv.host(l.name);
          const primary = await httpFrom(conn, 'GET', restapiUrl(inv, h, '/primary'));
          if (primary.status === 200) {
            leader = l.name;
            report(steps.primary, `${l.name} is the primary`);
          } else last = `${l.name} holds the leader lock; its /primary answers ${primary.status}`;
        } else last = l ? `${l.name} still leads` : 'no running leader yet';
      }
      if (leader && steps.haproxy.atMs === undefined) {
        const views = await Promise.all(haproxy.map(async (c) => ({ host: c.target.name, up: (await haproxyServers(inv, c)).filter((s) => s.backend === 'primary' && s.status.startsWith('UP')).map((s) => s.server) })));
        const wrong = views.filter((v) => v.up.length !== 1 || v.up[0] !== leader);
        if (wrong.length === 0) {
          report(steps.haproxy, `HAProxy routes the primary port to ${leader} on ${views.map((v) => v.host).join(', ') || 'no reachable host'}${skipped.length ? ` (unreachable: ${skipped.join(', ')})` : ''}`);
        } else last = wrong.map((v) => `HAProxy on ${v.host}: primary backend has [${v.up.join(', ')}] up`).join('; ');
      }
      if (leader && steps.old.atMs === undefined && oldReachable) {
        const streaming = await streamingFrom(session, leader);
        if (streaming?.has(oldLeader!)) report(steps.old, `${oldLeader} streams from ${leader}`);
        else last = `${oldLeader} does not stream from ${leader} yet`;
      }
      if (leader && steps.haproxy.atMs !== undefined && (steps.old.atMs !== undefined || !oldReachable)) {
        if (!oldReachable && oldLeader) out(`  ${oldLeader} is unreachable: it rejoins as a replica of ${leader} when it is back (Patroni rewinds it)\n`);
        return leader;
      }
    } catch (err) {
      last = (err instanceof Error ? err.message : String(err)).split('\n')[0];
    }
    await sleep(500);
  }
  throw new PghaError(`the change did not complete within ${secs(waitMs)}: ${last}`);
}

/** A Patroni answer other than success, as an error that quotes it. */
function refused(action: string, status: number, body: string): PghaError {
  const text = body.trim() || '(no body)';
  if (status === 412) return new PghaError(`Patroni refused the ${action} (412): ${text}. Nothing was changed.`);
  if (status === 401 || status === 403) return new PghaError(`Patroni refused the REST API credentials (${status}): check restapi_password in the secrets file`);
  return new PghaError(`Patroni answered ${status} to the ${action}: ${text}`);
}

export async function runSwitchover(file: string, opts: ChangeOptions & { at?: string } = {}): Promise<number> {
  const out = opts.out ?? ((t: string) => process.stdout.write(t));
  const inv = await loadInventory(file);
  const at = opts.at !== undefined ? parseAt(opts.at) : undefined;
  const prompt = needConfirmation('switchover', opts);
  const reach = connectEach(inv);
  const session = await reach.session();
  try {
    for (const [name, why] of reach.unreachable) out(`note: ${name} is unreachable: ${why}\n`);
    const { cluster } = await clusterView(session);
    const leaderNow = runningLeader(cluster);
    const streaming = leaderNow ? await streamingFrom(session, leaderNow.name) : undefined;
    const leader = checkSwitchover(inv, cluster, opts.candidate, streaming);
    const target = opts.candidate ?? 'a replica Patroni picks';
    const what = `switch over cluster ${inv.cluster.name} from ${leader.name} to ${target}${at ? ` at ${at.toISOString()}` : ' now'}`;
    if (prompt) await ask(`${what[0].toUpperCase()}${what.slice(1)}? Clients of the primary are disconnected for a few seconds.`);

    out(`${what}\n`);
    const started = Date.now();
    const body = { leader: leader.name, ...(opts.candidate ? { candidate: opts.candidate } : {}), ...(at ? { scheduled_at: opts.at } : {}) };
    const r = await httpFrom(askFrom(session, leader.name), 'POST', restapiUrl(inv, inv.host(leader.name), '/switchover'), { body, auth: inv, timeoutSec: 60 });
    if (at) {
      if (r.status !== 202 && r.status !== 200) throw refused('switchover', r.status, r.body);
      out(`Patroni scheduled the switchover (${r.status}): ${r.body.trim()}\nIt runs at ${at.toISOString()}; pgha status shows it until then.\n`);
      return EXIT.ok;
    }
    // 503 "status unknown": Patroni stopped waiting for the result (a loaded machine), not a
    // refusal; whether the leader changed is what the wait below finds out.
    if (r.status !== 200 && !(r.status === 503 && /unknown/i.test(r.body))) throw refused('switchover', r.status, r.body);
    out(`  Patroni answered ${r.status} after ${secs(Date.now() - started)}: ${r.body.trim()}\n`);
    const now = await waitForChange(session, leader.name, started, opts.waitMs ?? 120_000, out);
    if (opts.candidate && now !== opts.candidate) throw new PghaError(`${now} leads now, not ${opts.candidate}`);
    out(`switchover done: ${leader.name} -> ${now} in ${secs(Date.now() - started)}\n`);
    return EXIT.ok;
  } finally {
    await session.close();
  }
}

export async function runFailover(file: string, opts: ChangeOptions & { candidate: string }): Promise<number> {
  const out = opts.out ?? ((t: string) => process.stdout.write(t));
  const inv = await loadInventory(file);
  const prompt = needConfirmation('failover', opts);
  const reach = connectEach(inv);
  const session = await reach.session();
  try {
    for (const [name, why] of reach.unreachable) out(`note: ${name} is unreachable: ${why}\n`);
    const { cluster } = await clusterView(session);
    const candidate = findMember(inv, cluster, opts.candidate);
    const leader = runningLeader(cluster);
    if (leader) {
      // The lock alone is not health: a dead leader keeps it until its TTL runs out.
      const healthy = await httpFrom(askFrom(session, leader.name), 'GET', restapiUrl(inv, inv.host(leader.name), '/primary'))
        .then((r) => r.status === 200)
        .catch(() => false);
      if (healthy && leader.name === candidate.name) {
        out(`${leader.name} is the healthy leader already: nothing to do\n`);
        return EXIT.ok;
      }
      if (healthy) throw new InputError(`the cluster has a healthy leader, ${leader.name}: a failover is for a cluster without one. Use pgha switchover --candidate ${candidate.name}`);
    }
    // Without a working leader lag means little: Patroni itself refuses a candidate too far behind.
    if (candidate.tags?.nofailover === true) throw new InputError(`${candidate.name} is tagged nofailover: Patroni never promotes it`);
    if (candidate.state !== 'running' && candidate.state !== 'streaming') throw new PghaError(`${candidate.name} is ${candidate.state}, not running: it cannot take over`);
    if (!session.conns.has(candidate.name)) throw new PghaError(`${candidate.name} is unreachable: ${reach.unreachable.get(candidate.name) ?? ''}`);
    const oldLeader = leader?.name;
    const what = `fail over cluster ${inv.cluster.name} to ${candidate.name}${leader ? ` (the leader lock is still held by ${leader.name}, whose Patroni does not answer as primary)` : ' (no leader)'}`;
    if (prompt) await ask(`${what[0].toUpperCase()}${what.slice(1)}?`);

    out(`${what}\n`);
    const started = Date.now();
    const r = await httpFrom(session.conn(candidate.name), 'POST', restapiUrl(inv, inv.host(candidate.name), '/failover'), { body: { candidate: candidate.name }, auth: inv, timeoutSec: 60 });
    // 503 "status unknown": Patroni stopped polling (a dead leader's lock runs out later); keep waiting.
    if (r.status !== 200 && !(r.status === 503 && /unknown/i.test(r.body))) throw refused('failover', r.status, r.body);
    out(`  Patroni answered ${r.status} after ${secs(Date.now() - started)}: ${r.body.trim()}\n`);
    const now = await waitForChange(session, oldLeader, started, opts.waitMs ?? 120_000, out);
    if (now !== candidate.name) out(`note: Patroni elected ${now}, not ${candidate.name}: it had started its own failover first\n`);
    out(`failover done: ${now} leads, in ${secs(Date.now() - started)}\n`);
    return EXIT.ok;
  } finally {
    await session.close();
  }
}
