// Degraded-network scenarios for the fault suite: latency with jitter, packet loss and total
// stalls of the leader's link, and a slow etcd member (the lab's `netem` and `stall` verbs).
// Each runs as a scenario of suite.ts (a writer through HAProxy, a probe on every member, the
// final count, `pgha verify`), and adds what a DBA choosing a timing profile needs: every leader
// change during the condition, classified as necessary or unnecessary, and the client-visible
// error rate through HAProxy. Used by test/cluster/degraded.test.ts (the default profile, short
// windows) and `npm run bench -- --only degraded` (every profile, --minutes per condition).
//
// A leader change is UNNECESSARY when the old leader was in fact reachable: in the ttl before the
// change was seen, its PostgreSQL port answered a TCP connect from the test host with no silence
// of half the ttl or more (a 200 ms delay or a lost packet or two is not silence). Otherwise
// (its link was down long enough that Patroni could not tell it alive) the change is NECESSARY.
import * as lab from '../lab/lab.js';
import type { Checker } from './checker.js';
import { getJson, leaderName, markdownTable, runScenario, sleep, waitAllStreaming, type FaultContext, type FaultRun, type RestMember, type ScenarioOptions, type ScenarioResult } from './suite.js';
import { restapiUrl } from '../../src/components/patroni/paths.js';

export interface LeaderChange {
  /** Seconds after the condition began. */
  atS: number;
  from: string;
  to: string;
  necessary: boolean;
  /** The old leader's longest silence on its link in the ttl before the change (s). */
  silenceS: number;
}

export interface DegradedResult {
  condition: string;
  profile: string;
  /** How long the condition was held (s). */
  heldS: number;
  changes: LeaderChange[];
  unnecessary: number;
  necessary: number;
  /** Writes and connection attempts through HAProxy, and how many of them failed. */
  attempts: number;
  errors: number;
  errorRate: number;
  lost: number;
  duplicated: number;
  doublePrimary: number;
  verified: boolean;
  notes: string;
}

export interface Condition {
  name: string;
  /** Runs the condition for `holdMs` (it may end earlier, e.g. a stall) and removes it. */
  run(ctx: FaultContext, r: FaultRun, holdMs: number): Promise<void>;
}

/** Applies netem shaping to `target(r)` for the hold, then clears it. */
function shaped(name: string, spec: lab.NetemSpec, target: (ctx: FaultContext, r: FaultRun) => string): Condition {
  return {
    name,
    async run(ctx, r, holdMs) {
      const host = target(ctx, r);
      r.note(`${host}: ${await lab.netem(host, spec)}`);
      try {
        await sleep(holdMs);
      } finally {
        lab.netemClear(host);
      }
    },
  };
}

/**
 * The leader's link down for `seconds`, 2 s into the hold, and again (on whoever leads then) after
 * every member streams again and 10 s of calm, as long as a whole stall fits in the hold (one at least).
 */
function stalled(name: string, seconds: number): Condition {
  return {
    name,
    async run(ctx, r, holdMs) {
      const end = Date.now() + holdMs;
      let stalls = 0;
      while (stalls === 0 || end - Date.now() >= (seconds + 2) * 1000) {
        await sleep(2000);
        const target = stalls === 0 ? r.leader : await leaderName(ctx);
        await lab.stall(target, seconds);
        stalls += 1;
        await waitAllStreaming(ctx, 180_000);
        await sleep(Math.min(10_000, Math.max(0, end - Date.now())));
      }
      r.note(`${stalls} stall(s) of ${seconds} s of the leader's link`);
      const left = end - Date.now();
      if (left > 0) await sleep(left);
    },
  };
}

/** An etcd member on another host than the leader (the leader keeps its own link clean). */
const etcdNotOnLeader = (ctx: FaultContext, r: FaultRun) => {
  const h = ctx.inv.hostsWithRole('etcd').find((e) => e.name !== r.leader);
  if (!h) throw new Error('no etcd member on a host other than the leader');
  return h.name;
};

export const CONDITIONS: Condition[] = [
  shaped('latency 200 ms +- 100 ms on the leader', { delayMs: 200, jitterMs: 100, lossPct: 0 }, (_c, r) => r.leader),
  shaped('5% loss on the leader', { delayMs: 0, jitterMs: 0, lossPct: 5 }, (_c, r) => r.leader),
  stalled('5 s stall of the leader', 5),
  stalled('15 s stall of the leader', 15),
  shaped('slow etcd member (500 ms +- 100 ms)', { delayMs: 500, jitterMs: 100, lossPct: 0 }, etcdNotOnLeader),
];

/** Every ~500 ms: who is Patroni's leader (asked from the test host), and which members answer a TCP connect on their PostgreSQL port. */
class Watch {
  readonly leaders: { at: number; name: string }[] = [];
  readonly answered = new Map<string, number[]>();
  private stopped = false;
  private loops: Promise<void>[] = [];

  constructor(private ctx: FaultContext) {}

  start(): void {
    this.loops.push(this.leaderLoop());
    for (const m of this.ctx.members) {
      this.answered.set(m.name, []);
      this.loops.push(this.linkLoop(m.name, m.host, m.port));
    }
  }

  /**
   * Leader changes by timeline: every promotion starts a new one, so the leader of the newest
   * timeline any member reports is the leader, and a change is a newer timeline. (Views are
   * stale for up to a loop: an old leader back from a stall reports itself leader at its old
   * timeline, and a replica's cached view may agree with it for a moment; neither is a change.)
   */
  private async leaderLoop(): Promise<void> {
    const hosts = this.ctx.inv.hostsWithRole('postgres');
    let timeline = -1;
    while (!this.stopped) {
      const at = Date.now();
      const views = await Promise.all(
        hosts.map(async (h) => {
          try {
            const members = ((await getJson(restapiUrl(this.ctx.inv, h, '/cluster'), 2000, this.ctx.ca)) as { members: RestMember[] }).members;
            const l = members.find((m) => m.role === 'leader' && (m.state === 'running' || m.state === 'streaming'));
            return l && typeof l.timeline === 'number' ? { name: l.name, timeline: l.timeline } : null;
          } catch {
            return null;
          }
        }),
      );
      const newest = views.reduce<{ name: string; timeline: number } | null>((best, v) => (v && (!best || v.timeline > best.timeline) ? v : best), null);
      if (newest && newest.timeline > timeline) {
        this.leaders.push({ at, name: newest.name }); // the first one: the leader the window starts with
        timeline = newest.timeline;
      }
      await sleep(Math.max(0, 500 - (Date.now() - at)));
    }
  }

  private async linkLoop(name: string, host: string, port: number): Promise<void> {
    while (!this.stopped) {
      const at = Date.now();
      if (await lab.tcpOpen(host, port, 1500)) this.answered.get(name)!.push(Date.now());
      await sleep(Math.max(0, 500 - (Date.now() - at)));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
  }

  /** The longest stretch in [from, to] without an answer from `name` (s). */
  silenceS(name: string, from: number, to: number): number {
    let prev = from;
    let longest = 0;
    for (const t of this.answered.get(name) ?? []) {
      if (t < from) continue;
      if (t > to) break;
      longest = Math.max(longest, t - prev);
      prev = t;
    }
    return Math.round(Math.max(longest, to - prev) / 100) / 10;
  }
}

/** Failed attempts and all attempts through HAProxy (writes, and connections that never got to one). */
export function clientErrors(c: Checker): { attempts: number; errors: number } {
  const errors = [...c.writer.errors.values()].reduce((a, b) => a + b, 0);
  const failedWrites = c.writer.attempted - c.writer.acks.length;
  const failedConnects = Math.max(0, errors - failedWrites);
  return { attempts: c.writer.attempted + failedConnects, errors };
}

/**
 * One condition on the cluster as a fault scenario: the condition held for `holdS` seconds with
 * the watch running (and 3 s after it ends, for a late change), then the scenario's recovery,
 * count and verify. Never throws for a failed check: the results say it.
 */
export async function runCondition(ctx: FaultContext, condition: Condition, holdS: number, opts: ScenarioOptions = {}): Promise<{ result: ScenarioResult; degraded: DegradedResult; verifyOut: string }> {
  const watch = new Watch(ctx);
  let checker: Checker | undefined;
  let began = 0;
  let ended = 0;
  const { result, verifyOut } = await runScenario(
    ctx,
    condition.name,
    async (r) => {
      checker = r.checker;
      watch.start();
      began = Date.now();
      try {
        await condition.run(ctx, r, holdS * 1000);
        ended = Date.now();
        await sleep(3000);
      } finally {
        await watch.stop();
      }
    },
    opts,
  );
  const changes: LeaderChange[] = [];
  for (let i = 1; i < watch.leaders.length; i++) {
    const prev = watch.leaders[i - 1];
    const cur = watch.leaders[i];
    const silenceS = watch.silenceS(prev.name, Math.max(began, cur.at - ctx.ttl * 1000), cur.at);
    changes.push({ atS: Math.round((cur.at - began) / 100) / 10, from: prev.name, to: cur.name, necessary: silenceS >= ctx.ttl / 2, silenceS });
  }
  const lastSeen = watch.leaders.at(-1)?.name;
  const notes = [result.notes];
  if (lastSeen && result.leaderAfter && lastSeen !== result.leaderAfter) notes.push(`leader ${result.leaderAfter} at the end, after the watch (${lastSeen}) stopped`);
  const { attempts, errors } = checker ? clientErrors(checker) : { attempts: 0, errors: 0 };
  const degraded: DegradedResult = {
    condition: condition.name,
    profile: result.profile,
    heldS: Math.round(((ended || Date.now()) - (began || Date.now())) / 100) / 10,
    changes,
    unnecessary: changes.filter((c) => !c.necessary).length,
    necessary: changes.filter((c) => c.necessary).length,
    attempts,
    errors,
    errorRate: attempts ? Math.round((errors / attempts) * 10000) / 10000 : 0,
    lost: result.lost,
    duplicated: result.duplicated,
    doublePrimary: result.doublePrimary,
    verified: result.verified,
    notes: notes.filter(Boolean).join('; '),
  };
  ctx.log(`${condition.name}: ${JSON.stringify(degraded)}`);
  return { result, degraded, verifyOut };
}

export function degradedTable(results: DegradedResult[]): string {
  const head = ['condition', 'profile', 'held (s)', 'leader changes', 'unnecessary', 'necessary', 'client errors / attempts', 'error rate', 'writes lost', 'verified', 'changes (at s: from -> to, old leader silent s)'];
  const rows = results.map((d) => [
    d.condition,
    d.profile,
    d.heldS.toFixed(1),
    String(d.changes.length),
    String(d.unnecessary),
    String(d.necessary),
    `${d.errors} / ${d.attempts}`,
    `${(d.errorRate * 100).toFixed(2)}%`,
    String(d.lost),
    d.verified ? 'yes' : 'NO',
    d.changes.map((c) => `${c.atS}: ${c.from} -> ${c.to}, ${c.silenceS} s${c.necessary ? '' : ' (unnecessary)'}`).join('; ') || '-',
  ]);
  return markdownTable(head, rows);
}
