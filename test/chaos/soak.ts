// The chaos soak on the lab's cluster: the fault suite's writer (HAProxy's primary port) and
// probe (every member, for double primaries) plus a reader on HAProxy's replicas port run for the
// whole soak, while the seeded sequence of test/chaos/plan.ts injects the suite's faults one at a
// time, each followed by recovery (every member streaming, every etcd member healthy) and its
// seeded pause, until the soak's minutes have passed. Then: the lost-write and duplicate check,
// the double-primary check, no diverged WAL in the archive, and `pgha verify`. Used by
// `npm run chaos` (test/chaos/chaos.ts) and test/cluster/chaos.test.ts.
import pg from 'pg';
import { Checker, connect, longestGapS, lostTiming, problems, WRITES_TABLE, type Credentials, type Endpoint } from '../faults/checker.js';
import {
  clusterView,
  divergedInArchive,
  etcdQuorum,
  faultContext,
  killPatroni,
  killPostmaster,
  leaderName,
  markdownTable,
  partitionLeader,
  partitionReplica,
  pghaSwitchover,
  poweroffLeader,
  sleep,
  verify,
  waitAllStreaming,
  waitEtcdHealthy,
  type FaultContext,
  type FaultRun,
} from '../faults/suite.js';
import { DEFAULT_PAUSE, faultPlan, FAULT_KINDS, REPLICA_TARGETED, targetOf, type FaultKind, type PauseRange, type PlannedFault } from './plan.js';

export interface ChaosOptions {
  inventory: string;
  minutes: number;
  seed: number;
  pause?: PauseRange;
  log?: (s: string) => void;
}

/** One fault as injected, with what was measured around it. */
export interface InjectedFault extends PlannedFault {
  n: number;
  /** Seconds after the soak started. */
  atS: number;
  leaderBefore: string;
  leaderAfter: string | null;
  /** The replica aimed at (REPLICA_TARGETED kinds). */
  targetName: string | null;
  /** Seconds from the fault until another member was Patroni's running leader; null when the leader did not change. */
  failoverS: number | null;
  /** Seconds from the fault until every member streamed and every etcd member was healthy again. */
  healthyS: number | null;
  /** Longest gap between acknowledged writes from the fault until healthy again. */
  writeGapS: number;
  /** Reader errors from the fault until the end of its pause. */
  readerErrors: number;
  readOnlyErrors: number;
  doublePrimary: number;
  lost: number;
  notes: string[];
  error: string | null;
}

export interface KindRow {
  kind: FaultKind;
  count: number;
  failoverS: number[];
  healthyS: number[];
  writeGapS: number[];
  readerErrors: number;
  readOnlyErrors: number;
  lost: number;
  doublePrimary: number;
}

export interface ChaosReport {
  seed: number;
  profile: string;
  minutes: number;
  pause: PauseRange;
  durationS: number;
  faults: InjectedFault[];
  acknowledged: number;
  attempted: number;
  lost: number;
  duplicated: number;
  doublePrimary: number;
  readOnlyErrors: number;
  reads: number;
  readerErrors: number;
  /** Reads the replicas port answered from the primary (no replica was up for HAProxy). */
  readsFromPrimary: number;
  diverged: string[];
  verified: boolean;
  verifyOut: string;
  writerErrors: string[];
  readerErrorKinds: string[];
  problems: string[];
  passed: boolean;
}

const errText = (err: unknown) => (err instanceof Error ? err.message : String(err)).split('\n')[0];
const r1 = (ms: number) => Math.round(ms / 100) / 10;

/**
 * A client of HAProxy's replicas port: reads the writer's newest row, one query at a time,
 * reconnecting (to the next endpoint) after an error. Every error is kept with its time.
 */
export class Reader {
  reads = 0;
  fromPrimary = 0;
  readonly errors: { at: number; text: string }[] = [];
  private stopped = false;
  private loop?: Promise<void>;

  constructor(
    private endpoints: Endpoint[],
    private cred: Credentials,
    private run: string,
    private opts: { pauseMs?: number; maxMs?: number } = {},
  ) {}

  start(): void {
    this.loop = this.body();
  }

  private async body(): Promise<void> {
    const deadline = Date.now() + (this.opts.maxMs ?? 30 * 60_000);
    let client: pg.Client | null = null;
    let ep = 0;
    while (!this.stopped && Date.now() < deadline) {
      try {
        if (!client) client = await connect(this.endpoints[ep], this.cred);
        const r = await client.query<{ standby: boolean }>(`select pg_is_in_recovery() as standby, (select max(seq) from ${WRITES_TABLE} where run = $1) as seq`, [this.run]);
        this.reads += 1;
        if (!r.rows[0].standby) this.fromPrimary += 1;
        await sleep(this.opts.pauseMs ?? 100);
      } catch (err) {
        this.errors.push({ at: Date.now(), text: errText(err).replace(/\d+/g, 'N') });
        client?.end().catch(() => {});
        client = null;
        ep = (ep + 1) % this.endpoints.length;
        await sleep(100);
      }
    }
    client?.end().catch(() => {});
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  errorsBetween(from: number, to: number): number {
    return this.errors.filter((e) => e.at >= from && e.at < to).length;
  }
}

/** The suite's fault for a planned one; `aimed` receives the replica it picks (replica-targeted kinds). */
function faultFor(ctx: FaultContext, f: PlannedFault, aimed: (name: string) => void): (r: FaultRun) => Promise<void> {
  const pick = (replicas: string[]) => {
    const name = targetOf(f, replicas);
    aimed(name);
    return name;
  };
  switch (f.kind) {
    case 'partition leader':
      return partitionLeader(ctx);
    case 'power off leader':
      return poweroffLeader(ctx);
    case 'kill -9 postmaster':
      return killPostmaster();
    case 'kill -9 Patroni':
      return killPatroni(ctx);
    case 'partition replica':
      return partitionReplica(ctx, pick);
    case 'switchover':
      return pghaSwitchover(ctx, pick);
    case 'etcd quorum loss':
      return etcdQuorum(ctx);
  }
}

/** Polls Patroni's view until stopped: when a member other than `old` first was the running leader. */
function watchLeader(ctx: FaultContext, old: string): { stop: () => Promise<{ at: number | null; name: string | null }> } {
  let stopped = false;
  let at: number | null = null;
  let name: string | null = null;
  const loop = (async () => {
    while (!stopped && at === null) {
      const members = await clusterView(ctx);
      const l = members?.find((m) => m.role === 'leader' && m.name !== old && (m.state === 'running' || m.state === 'streaming'));
      if (l) {
        at = Date.now();
        name = l.name;
      } else await sleep(250);
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
      return { at, name };
    },
  };
}

/** Runs the soak on the cluster of `inventory` (a lab cluster: the faults use the lab's machines). Never throws for a failed check: the report says it. */
export async function runChaos(opts: ChaosOptions): Promise<ChaosReport> {
  const log = opts.log ?? ((s: string) => console.log(s));
  const pause = opts.pause ?? DEFAULT_PAUSE;
  const ctx = await faultContext(opts.inventory, log);
  await waitAllStreaming(ctx, 300_000);
  await waitEtcdHealthy(ctx, 120_000);
  const divergedBefore = new Set(await divergedInArchive(ctx));
  const maxMs = (opts.minutes + 30) * 60_000;
  const checker = await Checker.start({ writeEndpoints: ctx.haproxy, members: ctx.members, cred: ctx.cred, maxMs });
  const notes: string[] = [];
  if (!(await checker.waitForAcks(0, 50, 60_000))) notes.push('writes did not start within 60 s');
  const replicasPort = ctx.inv.hostsWithRole('haproxy').map((h) => ({ host: h.address, port: ctx.inv.haproxy.replicas_port }));
  const reader = new Reader(replicasPort, ctx.cred, checker.writer.run, { maxMs });
  reader.start();
  const started = Date.now();
  const end = started + opts.minutes * 60_000;
  log(`chaos: seed ${opts.seed}, profile ${ctx.inv.timing.profile} (ttl ${ctx.ttl} s), ${opts.minutes} min, pauses ${pause.minS}-${pause.maxS} s, writer run ${checker.writer.run}`);

  const faults: InjectedFault[] = [];
  const plan = faultPlan(opts.seed, pause);
  while (Date.now() < end) {
    const f = plan.next().value as PlannedFault;
    const n = faults.length + 1;
    const leaderBefore = await leaderName(ctx);
    let targetName: string | null = null;
    const fault = faultFor(ctx, f, (name) => (targetName = name));
    const faultNotes: string[] = [];
    const watcher = watchLeader(ctx, leaderBefore);
    const t0 = Date.now();
    log(`chaos #${n} +${Math.round((t0 - started) / 1000)} s: ${f.kind}${REPLICA_TARGETED.has(f.kind) ? ` (target ${f.target})` : ''}, leader ${leaderBefore}`);
    let error: string | null = null;
    let healthyAt: number | null = null;
    try {
      await fault({ leader: leaderBefore, checker, t0, note: (s) => faultNotes.push(s) });
      await waitAllStreaming(ctx, 300_000);
      await waitEtcdHealthy(ctx, 120_000);
      healthyAt = Date.now();
      if (!(await checker.waitForAcks(healthyAt, 5, 60_000))) faultNotes.push('writes did not resume within 60 s after recovery');
    } catch (err) {
      error = errText(err);
    }
    const change = await watcher.stop();
    const gapEnd = healthyAt ?? Date.now();
    const injected: InjectedFault = {
      ...f,
      n,
      atS: r1(t0 - started),
      leaderBefore,
      leaderAfter: change.name ?? (await clusterView(ctx))?.find((m) => m.role === 'leader')?.name ?? null,
      targetName,
      failoverS: change.at === null ? null : r1(change.at - t0),
      healthyS: healthyAt === null ? null : r1(healthyAt - t0),
      writeGapS: longestGapS(
        checker.writer.acks.filter((a) => a.at > t0 && a.at <= gapEnd),
        t0,
        gapEnd,
      ),
      readerErrors: 0,
      readOnlyErrors: 0,
      doublePrimary: 0,
      lost: 0,
      notes: faultNotes,
      error,
    };
    faults.push(injected);
    log(
      `chaos #${n} ${f.kind}${targetName ? ` -> ${targetName}` : ''}: ` +
        (error ? `ERROR ${error}` : `failover ${injected.failoverS ?? '-'} s, healthy after ${injected.healthyS} s, longest write gap ${injected.writeGapS} s; ${faultNotes.join('; ')}`),
    );
    // A fault that could not be repaired leaves a cluster no later fault can be judged on.
    if (error) break;
    await sleep(f.pauseS * 1000);
  }

  const stoppedAt = Date.now();
  await reader.stop();
  const report = await checker.finish();
  const diverged = (await divergedInArchive(ctx)).filter((s) => !divergedBefore.has(s));
  const v = await verify(ctx);

  // Attribute what happened to the fault whose window (its start until the next one's) held it.
  const windows = faults.map((f, i) => {
    const from = started + f.atS * 1000;
    const to = i + 1 < faults.length ? started + faults[i + 1].atS * 1000 : stoppedAt + 1;
    return { f, from, to };
  });
  const ackAt = new Map(checker.writer.acks.map((a) => [a.seq, a.at]));
  for (const { f, from, to } of windows) {
    f.readerErrors = reader.errorsBetween(from, to);
    f.readOnlyErrors = checker.writer.readOnly.filter((t) => t >= from && t < to).length;
    f.doublePrimary = report.doublePrimaryMoments.filter((m) => m.at >= from && m.at < to).length;
    f.lost = report.lost.filter((seq) => {
      const at = ackAt.get(seq) ?? 0;
      return at >= from && at < to;
    }).length;
  }

  const kinds = new Map<string, number>();
  for (const e of reader.errors) kinds.set(e.text, (kinds.get(e.text) ?? 0) + 1);
  // The lost writes, grouped by the fault that came next after each (the one that could have cut them off).
  const nextFault = new Map<(typeof windows)[number] | undefined, number[]>();
  for (const seq of report.lost) {
    const next = windows.find((w) => w.from >= (ackAt.get(seq) ?? 0));
    nextFault.set(next, [...(nextFault.get(next) ?? []), seq]);
  }
  const lostByFault = [...nextFault].map(([next, seqs]) =>
    next ? `fault #${next.f.n} (${next.f.kind}): ${lostTiming(checker.writer.acks, seqs, next.from)}` : `after the last fault: ${lostTiming(checker.writer.acks, seqs, windows.at(-1)?.from ?? started)}`,
  );
  const allProblems = [
    ...notes,
    ...problems(report),
    ...lostByFault,
    ...faults.filter((f) => f.error).map((f) => `fault #${f.n} (${f.kind}) failed: ${f.error}`),
    ...(faults.length ? [] : ['no fault was injected']),
    ...(diverged.length ? [`WAL written after a timeline fork reached the archive: ${diverged.join(', ')}`] : []),
    ...(v.ok ? [] : ['the cluster does not verify afterwards']),
  ];
  const out: ChaosReport = {
    seed: opts.seed,
    profile: ctx.inv.timing.profile,
    minutes: opts.minutes,
    pause,
    durationS: r1(stoppedAt - started),
    faults,
    acknowledged: report.acknowledged,
    attempted: report.attempted,
    lost: report.lost.length,
    duplicated: report.duplicated.length,
    doublePrimary: report.doublePrimaryMoments.length,
    readOnlyErrors: report.readOnlyErrors,
    reads: reader.reads,
    readerErrors: reader.errors.length,
    readsFromPrimary: reader.fromPrimary,
    diverged,
    verified: v.ok,
    verifyOut: v.out,
    writerErrors: report.errors,
    readerErrorKinds: [...kinds.entries()].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([e, c]) => `${c}x ${e}`),
    problems: allProblems,
    passed: allProblems.length === 0,
  };
  return out;
}

/** Per fault kind, in FAULT_KINDS order (kinds never injected left out). */
export function byKind(faults: InjectedFault[]): KindRow[] {
  return FAULT_KINDS.map((kind) => {
    const fs = faults.filter((f) => f.kind === kind);
    const nums = (xs: (number | null)[]) => xs.filter((x): x is number => x !== null);
    return {
      kind,
      count: fs.length,
      failoverS: nums(fs.map((f) => f.failoverS)),
      healthyS: nums(fs.map((f) => f.healthyS)),
      writeGapS: fs.map((f) => f.writeGapS),
      readerErrors: fs.reduce((s, f) => s + f.readerErrors, 0),
      readOnlyErrors: fs.reduce((s, f) => s + f.readOnlyErrors, 0),
      lost: fs.reduce((s, f) => s + f.lost, 0),
      doublePrimary: fs.reduce((s, f) => s + f.doublePrimary, 0),
    };
  }).filter((r) => r.count > 0);
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** "min / median / max" of some seconds, or "-" when there are none. */
export function spread(xs: number[]): string {
  if (!xs.length) return '-';
  const f = (x: number) => (Math.round(x * 10) / 10).toFixed(1);
  return `${f(Math.min(...xs))} / ${f(median(xs))} / ${f(Math.max(...xs))}`;
}

/** The report as Markdown: the per-kind table, every fault in order, the totals and the seed to replay it. */
export function chaosMarkdown(r: ChaosReport): string {
  const head = ['fault', 'count', 'failover (s) min / median / max', 'healthy again (s) min / median / max', 'write gap (s) min / median / max', 'reader errors', 'read-only errors', 'lost', 'double-primary'];
  const rows = byKind(r.faults).map((k) => [
    k.kind,
    String(k.count),
    k.failoverS.length ? `${spread(k.failoverS)}${k.failoverS.length < k.count ? ` (${k.failoverS.length} of ${k.count})` : ''}` : '-',
    spread(k.healthyS),
    spread(k.writeGapS),
    String(k.readerErrors),
    String(k.readOnlyErrors),
    String(k.lost),
    String(k.doublePrimary),
  ]);
  const seq = markdownTable(
    ['#', 'at (s)', 'fault', 'target', 'leader before -> after', 'failover (s)', 'healthy again (s)', 'write gap (s)', 'reader errors', 'pause (s)', 'notes'],
    r.faults.map((f) => [
      String(f.n),
      f.atS.toFixed(0),
      f.kind,
      f.targetName ?? '-',
      `${f.leaderBefore} -> ${f.leaderAfter ?? '?'}`,
      f.failoverS === null ? '-' : f.failoverS.toFixed(1),
      f.healthyS === null ? '-' : f.healthyS.toFixed(1),
      f.writeGapS.toFixed(1),
      String(f.readerErrors),
      String(f.pauseS),
      (f.error ? `ERROR ${f.error}; ` : '') + f.notes.join('; ').replace(/\|/g, '/'),
    ]),
  );
  return [
    `Chaos soak: seed ${r.seed}, timing profile ${r.profile}, ${r.minutes} min asked, ${(r.durationS / 60).toFixed(1)} min run, ${r.faults.length} faults, pauses ${r.pause.minS}-${r.pause.maxS} s.`,
    '',
    markdownTable(head, rows),
    '',
    'Failover: from the fault until another member was Patroni\'s running leader (faults that moved the leader only). Healthy again: from the fault until every member streamed and every etcd member was healthy (includes the time a fault is held, e.g. a partition for ttl + 15 s). Write gap: the longest time without an acknowledged write in between. Reader errors, read-only errors, lost and double-primary: from the fault until the next one.',
    '',
    seq,
    '',
    `- writes: ${r.acknowledged} acknowledged of ${r.attempted} attempted; lost ${r.lost}; duplicated ${r.duplicated}; double-primary moments ${r.doublePrimary}; read-only errors ${r.readOnlyErrors}`,
    `- reads (replicas port): ${r.reads} answered (${r.readsFromPrimary} by the primary), ${r.readerErrors} errors${r.readerErrorKinds.length ? `: ${r.readerErrorKinds.join(' | ')}` : ''}`,
    `- writer errors: ${r.writerErrors.join(' | ') || 'none'}`,
    `- WAL of a diverged timeline in the archive: ${r.diverged.length ? r.diverged.join(', ') : 'none'}`,
    `- pgha verify afterwards: ${r.verified ? 'ok' : 'FAILED'}`,
    `- result: ${r.passed ? 'PASS' : `FAIL: ${r.problems.join('; ')}`}`,
    `- replay: npm run chaos -- --minutes ${r.minutes} --profile ${r.profile} --seed ${r.seed}${r.pause.minS !== DEFAULT_PAUSE.minS || r.pause.maxS !== DEFAULT_PAUSE.maxS ? ` --pause ${r.pause.minS}-${r.pause.maxS}` : ''}`,
  ].join('\n');
}
