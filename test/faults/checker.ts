// The fault tests' correctness checker: a writer that behaves like an application (writes through
// HAProxy's primary port, reconnects after a short pause) and a probe that asks every member
// directly whether it accepts writes. After a scenario, every write the server acknowledged must
// be on the final leader exactly once, and no two members may have accepted writes at once.
import pg from 'pg';

export interface Endpoint {
  host: string;
  port: number;
}

export interface Member extends Endpoint {
  name: string;
}

export interface Credentials {
  user: string;
  password: string;
  database?: string;
  /** The cluster CA (PEM): TLS, the server verified against it and by the address dialled (as sslmode=verify-full). */
  ca?: string;
  /**
   * With `ca`: a server that does not offer TLS yet is spoken to in clear text (libpq's prefer,
   * but verified whenever TLS is there): a writer that lives through a cluster's move to TLS.
   */
  preferTls?: boolean;
}

/** One acknowledged write: its sequence number and when the acknowledgement arrived (ms). */
export interface Ack {
  seq: number;
  at: number;
}

/** One probe round: which members accepted the probe write in it. */
export interface ProbeRound {
  at: number;
  writable: string[];
}

export interface CheckReport {
  run: string;
  attempted: number;
  acknowledged: number;
  lost: number[];
  duplicated: number[];
  /** Longest gap between two acknowledged writes (or from start / to stop), seconds. */
  unavailabilityS: number;
  /** Probe rounds in which two or more members accepted a write. */
  doublePrimaryMoments: ProbeRound[];
  probeRounds: number;
  finalLeader: string;
  errors: string[];
  /** Client errors of the read-only kind (SQLSTATE 25006): HAProxy's primary port sent the client to a server that does not accept writes. */
  readOnlyErrors: number;
}

export const WRITES_TABLE = 'pgha_fault_writes';
export const PROBE_TABLE = 'pgha_fault_probe';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A client with a short connect timeout and statement timeout (server- and client-side). */
export async function connect(ep: Endpoint, cred: Credentials, timeoutMs = 2000): Promise<pg.Client> {
  try {
    return await connectOnce(ep, cred, timeoutMs);
  } catch (err) {
    if (cred.ca && cred.preferTls && /does not support SSL/i.test(errText(err))) return connectOnce(ep, { ...cred, ca: undefined }, timeoutMs);
    throw err;
  }
}

async function connectOnce(ep: Endpoint, cred: Credentials, timeoutMs: number): Promise<pg.Client> {
  const client = new pg.Client({
    host: ep.host,
    port: ep.port,
    user: cred.user,
    password: cred.password,
    database: cred.database ?? 'postgres',
    connectionTimeoutMillis: timeoutMs,
    statement_timeout: timeoutMs,
    query_timeout: timeoutMs + 500,
    keepAlive: true,
    application_name: 'pgha-fault-checker',
    ...(cred.ca ? { ssl: { ca: cred.ca } } : {}),
  });
  // A broken connection emits 'error' outside any query; without a listener it would crash the run.
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (err) {
    client.end().catch(() => {});
    throw err;
  }
  return client;
}

const errText = (err: unknown) => (err instanceof Error ? err.message : String(err)).split('\n')[0];

/**
 * A refusal by a server that does not accept writes (a standby, or a primary being demoted):
 * SQLSTATE 25006 read_only_sql_transaction ("cannot execute INSERT in a read-only transaction",
 * "session is read-only"). A client of the primary port must never see one.
 */
export function isReadOnlyError(err: unknown): boolean {
  if ((err as { code?: unknown })?.code === '25006') return true;
  return /read-only transaction|session is read-only/i.test(errText(err));
}

/**
 * Writes increasing sequence numbers, one at a time, through the endpoints (tried in order on
 * failure, as an application with several HAProxy addresses would). A number whose outcome is
 * unknown (error or timeout) is never retried: every number is attempted once, so a number found
 * twice is a real duplicate.
 */
export class Writer {
  readonly acks: Ack[] = [];
  readonly errors = new Map<string, number>();
  /** Writes refused as read-only (see isReadOnlyError), with when (ms). */
  readonly readOnly: number[] = [];
  attempted = 0;
  startedAt = 0;
  stoppedAt = 0;
  private stopped = false;
  private loop?: Promise<void>;

  constructor(
    private endpoints: Endpoint[],
    private cred: Credentials,
    readonly run: string,
    private opts: { pauseMs?: number; retryPauseMs?: number; maxMs?: number } = {},
  ) {}

  start(): void {
    this.startedAt = Date.now();
    this.loop = this.body();
  }

  private noteError(err: unknown): void {
    if (isReadOnlyError(err)) this.readOnly.push(Date.now());
    const e = errText(err).replace(/\d+/g, 'N');
    this.errors.set(e, (this.errors.get(e) ?? 0) + 1);
  }

  private async body(): Promise<void> {
    const deadline = this.startedAt + (this.opts.maxMs ?? 30 * 60_000);
    let client: pg.Client | null = null;
    let ep = 0;
    let seq = 0;
    while (!this.stopped && Date.now() < deadline) {
      if (!client) {
        try {
          client = await connect(this.endpoints[ep], this.cred);
        } catch (err) {
          this.noteError(err);
          ep = (ep + 1) % this.endpoints.length;
          await sleep(this.opts.retryPauseMs ?? 100);
          continue;
        }
      }
      seq += 1;
      this.attempted += 1;
      try {
        await client.query(`insert into ${WRITES_TABLE} (run, seq) values ($1, $2)`, [this.run, seq]);
        this.acks.push({ seq, at: Date.now() });
        if (this.opts.pauseMs) await sleep(this.opts.pauseMs);
      } catch (err) {
        this.noteError(err);
        client.end().catch(() => {});
        client = null;
        await sleep(this.opts.retryPauseMs ?? 100);
      }
    }
    client?.end().catch(() => {});
    this.stoppedAt = Date.now();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  /** Acknowledged writes after `t` (ms). */
  acksAfter(t: number): number {
    return this.acks.filter((a) => a.at > t).length;
  }
}

/** Asks one member whether it accepts a write right now. */
export type MemberProbe = (m: Member) => Promise<boolean>;

/** The real question: a tiny write on the member itself, over a connection kept open. */
export function directWriteProbe(cred: Credentials): { probe: MemberProbe; close: () => Promise<void> } {
  const clients = new Map<string, pg.Client>();
  const probe: MemberProbe = async (m) => {
    let c = clients.get(m.name);
    try {
      if (!c) {
        c = await connect(m, cred, 1000);
        clients.set(m.name, c);
      }
      await c.query(`insert into ${PROBE_TABLE} (member) values ($1)`, [m.name]);
      return true;
    } catch (err) {
      // Read-only (a standby): the session stays, and its next insert succeeds once the member
      // is promoted (a transaction is read-only only while recovery runs). A new connection every
      // round cost each replica a backend and a TLS handshake 4 times a second. Down or
      // unreachable: drop it, reconnect next round.
      if (isReadOnlyError(err)) return false;
      clients.delete(m.name);
      c?.end().catch(() => {});
      return false;
    }
  };
  const close = async () => {
    await Promise.all([...clients.values()].map((c) => c.end().catch(() => {})));
    clients.clear();
  };
  return { probe, close };
}

/** Every ~intervalMs, all members at once: who accepts writes. */
export class PrimaryProbe {
  readonly rounds: ProbeRound[] = [];
  private stopped = false;
  private loop?: Promise<void>;

  constructor(
    private members: Member[],
    private probe: MemberProbe,
    private opts: { intervalMs?: number; maxMs?: number } = {},
  ) {}

  start(): void {
    this.loop = this.body();
  }

  private async body(): Promise<void> {
    const interval = this.opts.intervalMs ?? 250;
    const deadline = Date.now() + (this.opts.maxMs ?? 30 * 60_000);
    while (!this.stopped && Date.now() < deadline) {
      const at = Date.now();
      const answers = await Promise.all(this.members.map((m) => this.probe(m)));
      this.rounds.push({ at, writable: this.members.filter((_, i) => answers[i]).map((m) => m.name) });
      const left = interval - (Date.now() - at);
      if (left > 0) await sleep(left);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  doublePrimaryMoments(): ProbeRound[] {
    return this.rounds.filter((r) => r.writable.length > 1);
  }
}

/** Longest gap between acknowledgements, counting from `from` and up to `to` (ms -> s). */
export function longestGapS(acks: Ack[], from: number, to: number): number {
  let prev = from;
  let gap = 0;
  for (const a of acks) {
    gap = Math.max(gap, a.at - prev);
    prev = a.at;
  }
  gap = Math.max(gap, to - prev);
  return Math.round(gap / 100) / 10;
}

/**
 * When each lost write was acknowledged, from the fault (negative: before it), and whether it was
 * the last acknowledgement before the fault: a loss right at the fault is the asynchronous
 * replication window (a commit the leader acknowledged before any replica received it); one
 * long before it, or after recovery, is something else.
 */
export function lostTiming(acks: Ack[], lost: number[], t0: number): string {
  const at = new Map(acks.map((a) => [a.seq, a.at]));
  const lastBefore = acks.filter((a) => a.at <= t0).at(-1)?.seq;
  const each = lost.slice(0, 10).map((seq) => {
    const s = ((at.get(seq) ?? NaN) - t0) / 1000;
    return `${seq} acknowledged ${Math.abs(s).toFixed(3)} s ${s <= 0 ? 'before' : 'after'} the fault${seq === lastBefore ? ' (the last acknowledgement before it)' : ''}`;
  });
  return `lost writes: ${each.join(', ')}`;
}

/** Compares the acknowledged numbers with the rows found: lost = acknowledged but absent; duplicated = present more than once. */
export function compareRows(acks: Ack[], found: Map<number, number>): { lost: number[]; duplicated: number[] } {
  const lost = acks.filter((a) => !found.has(a.seq)).map((a) => a.seq);
  const duplicated = [...found.entries()].filter(([, n]) => n > 1).map(([seq]) => seq).sort((a, b) => a - b);
  return { lost, duplicated };
}

/** The member that accepts writes now (asked directly), or null. */
export async function findLeader(members: Member[], cred: Credentials): Promise<Member | null> {
  const answers = await Promise.all(
    members.map(async (m) => {
      try {
        const c = await connect(m, cred, 2000);
        try {
          return (await c.query('select not pg_is_in_recovery() as primary')).rows[0].primary === true;
        } finally {
          await c.end().catch(() => {});
        }
      } catch {
        return false;
      }
    }),
  );
  const leaders = members.filter((_, i) => answers[i]);
  return leaders.length === 1 ? leaders[0] : null;
}

/** Creates the checker's tables (plain tables: no unique constraint, which would hide duplicates). */
export async function prepareTables(leader: Endpoint, cred: Credentials): Promise<void> {
  const c = await connect(leader, cred, 5000);
  try {
    await c.query(`create table if not exists ${WRITES_TABLE} (run text not null, seq bigint not null, at timestamptz not null default clock_timestamp())`);
    await c.query(`create index if not exists ${WRITES_TABLE}_run on ${WRITES_TABLE} (run)`);
    await c.query(`create table if not exists ${PROBE_TABLE} (member text not null, at timestamptz not null default clock_timestamp())`);
    // The probe writes several rows a second: keep the table small.
    await c.query(`delete from ${PROBE_TABLE} where at < now() - interval '10 minutes'`);
  } finally {
    await c.end().catch(() => {});
  }
}

/** Rows of one run on a member: seq -> how many times it is there. */
export async function rowsOf(ep: Endpoint, cred: Credentials, run: string): Promise<Map<number, number>> {
  const c = await connect(ep, cred, 5000);
  try {
    const r = await c.query<{ seq: string; n: string }>(`select seq, count(*) as n from ${WRITES_TABLE} where run = $1 group by seq`, [run]);
    return new Map(r.rows.map((row) => [Number(row.seq), Number(row.n)]));
  } finally {
    await c.end().catch(() => {});
  }
}

export interface CheckerOptions {
  /** HAProxy primary ports, in the order the writer tries them. */
  writeEndpoints: Endpoint[];
  /** Every database member's PostgreSQL, asked directly. */
  members: Member[];
  cred: Credentials;
  run?: string;
  writerPauseMs?: number;
  probeIntervalMs?: number;
  /** Replaces the direct write probe (used by the self-test to plant a second primary). */
  probe?: MemberProbe;
  /** Runs just before the final count (used by the self-test to plant a loss). */
  beforeFinalCheck?: (leader: Member, run: string) => Promise<void>;
  maxMs?: number;
}

/** A writer plus a probe for the length of one scenario. */
export class Checker {
  readonly writer: Writer;
  readonly probe: PrimaryProbe;
  private closeProbe: () => Promise<void> = async () => {};

  private constructor(private opts: CheckerOptions) {
    const run = opts.run ?? `run-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    this.writer = new Writer(opts.writeEndpoints, opts.cred, run, { pauseMs: opts.writerPauseMs ?? 20, maxMs: opts.maxMs });
    let probe = opts.probe;
    if (!probe) {
      const direct = directWriteProbe(opts.cred);
      probe = direct.probe;
      this.closeProbe = direct.close;
    }
    this.probe = new PrimaryProbe(opts.members, probe, { intervalMs: opts.probeIntervalMs ?? 250, maxMs: opts.maxMs });
  }

  static async start(opts: CheckerOptions): Promise<Checker> {
    const leader = await waitForLeader(opts.members, opts.cred, 60_000);
    await prepareTables(leader, opts.cred);
    const c = new Checker(opts);
    c.writer.start();
    c.probe.start();
    return c;
  }

  /** Waits until `n` more writes are acknowledged after `since` (or the timeout). */
  async waitForAcks(since: number, n: number, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.writer.acksAfter(since) >= n) return true;
      await sleep(100);
    }
    return false;
  }

  /** Stops the writer and the probe. */
  async stop(): Promise<void> {
    await this.writer.stop();
    await this.probe.stop();
    await this.closeProbe();
  }

  /** Stops both loops and checks the final leader's rows. */
  async finish(): Promise<CheckReport> {
    await this.stop();
    const leader = await waitForLeader(this.opts.members, this.opts.cred, 120_000);
    if (this.opts.beforeFinalCheck) await this.opts.beforeFinalCheck(leader, this.writer.run);
    const found = await rowsOf(leader, this.opts.cred, this.writer.run);
    const { lost, duplicated } = compareRows(this.writer.acks, found);
    return {
      run: this.writer.run,
      attempted: this.writer.attempted,
      acknowledged: this.writer.acks.length,
      lost,
      duplicated,
      unavailabilityS: longestGapS(this.writer.acks, this.writer.startedAt, this.writer.stoppedAt),
      doublePrimaryMoments: this.probe.doublePrimaryMoments(),
      probeRounds: this.probe.rounds.length,
      finalLeader: leader.name,
      errors: [...this.writer.errors.entries()].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([e, n]) => `${n}x ${e}`),
      readOnlyErrors: this.writer.readOnly.length,
    };
  }
}

export async function waitForLeader(members: Member[], cred: Credentials, timeoutMs: number): Promise<Member> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const l = await findLeader(members, cred);
    if (l) return l;
    if (Date.now() > deadline) throw new Error(`no single member accepts writes after ${timeoutMs / 1000} s`);
    await sleep(500);
  }
}

/** One-line summary of a report's failures, empty when it is correct. */
export function problems(r: CheckReport): string[] {
  const out: string[] = [];
  if (r.lost.length) out.push(`${r.lost.length} acknowledged write(s) lost (e.g. ${r.lost.slice(0, 10).join(', ')})`);
  if (r.duplicated.length) out.push(`${r.duplicated.length} write(s) found twice (e.g. ${r.duplicated.slice(0, 10).join(', ')})`);
  if (r.doublePrimaryMoments.length) {
    const first = r.doublePrimaryMoments[0];
    out.push(`${r.doublePrimaryMoments.length} double-primary moment(s), first at ${new Date(first.at).toISOString()}: ${first.writable.join(' + ')}`);
  }
  if (r.acknowledged === 0) out.push('no write was acknowledged at all');
  return out;
}
