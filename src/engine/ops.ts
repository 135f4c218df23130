// Operations are data: each says what it wants, `check` compares that with the host's
// facts and returns the difference (null: nothing to do), `apply` makes the change.
// Check mode runs only `check`. Ops never assume state they did not read.
import { createHash } from 'node:crypto';
import { stalledOn, watched, withStallReports } from './apt-watch.js';
import type { Command, Connection, FileAttributes, RunResult } from '../ssh/index.js';
import { CommandError, CommandTimedOut } from '../ssh/connection.js';
import { Masker } from '../ssh/mask.js';
import { commandText } from '../ssh/quote.js';
import { HostError, PghaError } from '../errors.js';
import { unifiedDiff } from './diff.js';
import type { FactRequest, Facts } from './facts.js';

/** The difference an op found: what it would change, in a line or a few. */
export interface Change {
  /** One line, e.g. "content and mode 0644 -> 0640", "install patroni, etcd-server". */
  summary: string;
  /** A unified diff of a file's content (secrets masked), shown in check and verbose mode. */
  diff?: string;
}

/** Runs at the end of a stage on a host when an op that notified it changed something. */
export interface Handler {
  /** Identity for dedupe: notified twice, run once. */
  name: string;
  run(conn: Connection): Promise<void>;
}

export interface Operation {
  describe: string;
  /** Facts this op reads, fetched in bulk before the host's ops run. */
  needs?: FactRequest;
  /** Handlers to run (once, at the end of the stage) if this op changed something. */
  notify?: Handler[];
  check(conn: Connection, facts: Facts): Promise<Change | null>;
  /**
   * Makes the change; called only after check returned one, with the same facts. `progress`
   * tells the operator what a long step waits for (shown as "HOST: TEXT", also without -v).
   */
  apply(conn: Connection, facts: Facts, progress?: (text: string) => void): Promise<void>;
}

/** Common options: which handlers to notify. */
export interface NotifyOptions {
  notify?: Handler[];
}

// ---- files and directories ----

/** A file's text with every secret value replaced, and those values (in file order). */
export interface MaskedContent {
  text: string;
  /** The values that were masked: to see whether they changed, and for the text masker. */
  secrets: string[];
}

/** Masks one file format's secret values; `error` (never quoting the file) when it cannot parse it. */
export type SecretMask = (content: string) => MaskedContent | { error: string };

export interface FileOptions extends FileAttributes, NotifyOptions {
  /** Never show a diff of this file (it is all secret, e.g. a .pgpass). */
  sensitive?: boolean;
  /**
   * The file holds secrets at known places: diffs compare both sides masked by it, so neither
   * the host's old values nor the new ones are shown (a change to them is only named).
   */
  mask?: SecretMask;
}

function modeOf(mode: number | string | undefined, dflt: number): number {
  return mode === undefined ? dflt : typeof mode === 'number' ? mode : parseInt(mode, 8);
}

const oct = (m: number) => m.toString(8).padStart(4, '0');

/** Differences in owner, group and mode, as text parts ('' when none). */
function attrChanges(fact: { owner: string; group: string; mode: number }, want: FileAttributes, dfltMode: number): string[] {
  const parts: string[] = [];
  if (want.owner !== undefined && fact.owner !== want.owner) parts.push(`owner ${fact.owner} -> ${want.owner}`);
  if (want.group !== undefined && fact.group !== want.group) parts.push(`group ${fact.group} -> ${want.group}`);
  const mode = modeOf(want.mode, dfltMode);
  if ((fact.mode & 0o7777) !== mode) parts.push(`mode ${oct(fact.mode)} -> ${oct(mode)}`);
  return parts;
}

/** A whole file: content, owner, group, mode (default 0644). Replaced atomically. */
export function file(path: string, content: string, opts: FileOptions = {}): Operation {
  const { notify, sensitive, mask, ...attrs } = opts;
  const wantSha = createHash('sha256').update(content).digest('hex');
  return {
    describe: `file ${path}`,
    needs: { files: [path] },
    notify,
    async check(conn, facts) {
      const fact = await facts.file(path);
      if (!fact.exists) {
        const shown = sensitive ? {} : contentDiff(conn, null, content, mask, '/dev/null', path);
        return { summary: `create${shown.note ? ` (${shown.note})` : ''}`, diff: shown.diff };
      }
      if (fact.kind !== 'file') throw new PghaError(`${path} exists and is not a regular file (${fact.kind}): move it away, pgha writes a file there`);
      const parts = attrChanges(fact, attrs, 0o644);
      let diff: string | undefined;
      if (fact.sha256 !== wantSha) {
        const shown = sensitive ? {} : contentDiff(conn, (await conn.readFile(path)) ?? '', content, mask, path, path);
        parts.unshift(shown.note ? `content (${shown.note})` : 'content');
        diff = shown.diff;
      }
      return parts.length === 0 ? null : { summary: parts.join(', '), diff };
    },
    async apply(conn, facts) {
      await conn.writeFileAtomic(path, content, attrs);
      facts.invalidate({ files: [path] });
    },
  };
}

/**
 * The diff shown for a file's content (old null: a new file). With a mask both sides are masked
 * by structure, then (second line of defence) as text, knowing the values the mask found on
 * both sides as well as the connection's secrets. The note says what the diff cannot show.
 */
function contentDiff(conn: Connection, old: string | null, content: string, mask: SecretMask | undefined, oldName: string, newName: string): { diff?: string; note?: string } {
  if (!mask) return { diff: conn.masker.mask(unifiedDiff(old ?? '', content, oldName, newName)) || undefined };
  const before = old === null ? { text: '', secrets: [] } : mask(old);
  const after = mask(content);
  if ('error' in before) return { note: `no diff: the file on the host is ${before.error}` };
  if ('error' in after) return { note: `no diff: the new content is ${after.error}` };
  const found = new Masker([...before.secrets, ...after.secrets]);
  const diff = conn.masker.mask(found.mask(unifiedDiff(before.text, after.text, oldName, newName))) || undefined;
  const changed = old !== null && JSON.stringify(before.secrets) !== JSON.stringify(after.secrets);
  return { diff, note: changed ? 'secret values changed; not shown' : undefined };
}

/** A directory with owner, group, mode (default 0755); parents are created as needed. */
export function directory(path: string, opts: FileAttributes & NotifyOptions = {}): Operation {
  const { notify, ...attrs } = opts;
  const mode = oct(modeOf(attrs.mode, 0o755));
  return {
    describe: `directory ${path}`,
    needs: { files: [path] },
    notify,
    async check(_conn, facts) {
      const fact = await facts.file(path);
      if (!fact.exists) return { summary: `create (mode ${mode})` };
      if (fact.kind !== 'dir') throw new PghaError(`${path} exists and is not a directory (${fact.kind}): move it away, pgha makes a directory there`);
      const parts = attrChanges(fact, attrs, 0o755);
      return parts.length === 0 ? null : { summary: parts.join(', ') };
    },
    async apply(conn, facts) {
      const own = attrs.owner !== undefined || attrs.group !== undefined ? `${attrs.owner ?? ''}:${attrs.group ?? ''}` : '';
      await conn.run(['sh', '-c', 'mkdir -p -- "$1" && { [ -z "$2" ] || chown -- "$2" "$1"; } && chmod -- "$3" "$1"', 'sh', path, own, mode]);
      facts.invalidate({ files: [path] });
    },
  };
}

// ---- packages ----

export interface PackagesOptions extends NotifyOptions {
  /** Seconds to wait, in all, for other apt or dpkg runs to release their locks (default 300). */
  lockTimeoutSec?: number;
  /** Seconds one `apt-get update` may take before it is killed and tried again (default 150). */
  updateTimeoutSec?: number;
  /** How many times `apt-get update` is tried (default 3); waiting for a lock is not a try. */
  updateAttempts?: number;
  /** Seconds without any download progress after which apt-get is ended as stalled and tried again (default 20; apt-watch.ts). */
  stallSec?: number;
  /** Seconds without progress before apply says which host waits on what (default 10). */
  stallReportSec?: number;
  /** The locks waited for (default APT_LOCKS; tests point elsewhere). */
  locks?: AptLock[];
  /** Exact versions, by package name: a missing package with one is installed as NAME=VERSION. */
  versions?: Record<string, string>;
}

// A stalled mirror or proxy connection is given up after 30 s of silence, not apt's 120 s.
const APT_NETWORK = ['-o', 'Acquire::http::Timeout=30', '-o', 'Acquire::https::Timeout=30', '-o', 'Acquire::Retries=3'];

/**
 * Debian packages installed. Give ONE packages op per host with every package the host
 * needs: the missing ones are installed in a single apt-get call (`apt-get update` first,
 * only when something is missing). Another apt or dpkg run (an earlier, interrupted apply's
 * apt-get, unattended-upgrades) is waited for, and the wait is reported.
 */
export function packages(names: string[], opts: PackagesOptions = {}): Operation {
  const missing = async (facts: Facts) => {
    const out: string[] = [];
    for (const n of names) if ((await facts.package(n)) === null) out.push(n);
    return out;
  };
  const pinned = (n: string) => (opts.versions?.[n] ? `${n}=${opts.versions[n]}` : n);
  return {
    describe: `packages ${names.join(', ')}`,
    needs: { packages: names },
    notify: opts.notify,
    async check(_conn, facts) {
      const m = await missing(facts);
      return m.length === 0 ? null : { summary: `install ${m.map((n) => (opts.versions?.[n] ? `${n} ${opts.versions[n]}` : n)).join(', ')}` };
    },
    async apply(conn, facts, progress) {
      const m = await missing(facts);
      const locks = new AptLockWait(conn, opts.locks ?? APT_LOCKS, opts.lockTimeoutSec ?? 300, progress);
      const watch: AptWatch = { stallSec: opts.stallSec ?? 20, reportAfterSec: opts.stallReportSec ?? 10, progress: progress ?? (() => {}) };
      await aptUpdate(conn, aptGet(['update']), opts.updateTimeoutSec ?? 150, opts.updateAttempts ?? 3, locks, watch);
      // Downloads first, watched for a stall (dpkg's own work after them makes no download progress).
      const install = ['install', '-y', '--no-install-recommends', ...m.map(pinned)];
      await aptDownload(conn, aptGet([...install.slice(0, 2), '--download-only', ...install.slice(2)]), opts.updateAttempts ?? 3, locks, watch);
      await locks.run(aptGet(install), 30 * 60_000, true);
      facts.invalidate({ packages: names });
    },
  };
}

/** apt-get, non-interactive, with pgha's network limits. */
const aptGet = (args: string[]): string[] => ['env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', '-q', ...APT_NETWORK, ...args];

/**
 * apt-get on a host outside a packages op (`pgha upgrade`): `update` bounded and tried again as
 * the packages op does, then the command, both waiting for other apt and dpkg runs (`progress`
 * says so). Changed configuration files the package ships are not taken: pgha writes its own.
 */
export async function aptUpgrade(
  conn: Connection,
  args: string[],
  opts: { update?: boolean; progress?: (text: string) => void; locks?: AptLock[]; lockTimeoutSec?: number } = {},
): Promise<RunResult> {
  const locks = new AptLockWait(conn, opts.locks ?? APT_LOCKS, opts.lockTimeoutSec ?? 300, opts.progress);
  if (opts.update !== false) await aptUpdate(conn, aptGet(['update']), 150, 3, locks, { stallSec: 20, reportAfterSec: 10, progress: opts.progress ?? (() => {}) });
  if (args.length === 0) return { code: 0, stdout: '', stderr: '' };
  const keepConfig = ['-o', 'Dpkg::Options::=--force-confdef', '-o', 'Dpkg::Options::=--force-confold'];
  return locks.run(aptGet([...keepConfig, ...args]), 30 * 60_000, true);
}

/**
 * `apt-get update`, tried again when it fails or runs longer than `limit` seconds (the
 * connection's time limit kills it on the host, so no apt is left holding the lists lock): a
 * proxy can answer one of several hosts asking for the same index at once with an error, or
 * leave its request hanging (seen with apt-cacher-ng). A lock held by someone else is waited
 * for (AptLockWait) and costs no try.
 */
async function aptUpdate(conn: Connection, update: string[], limit: number, attempts: number, locks: AptLockWait, watch: AptWatch): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    let what: string;
    let tail = '';
    try {
      const r = await withStallReports(conn, 'apt-get update', locks.run(watched(update, watch.stallSec), limit * 1000, false), watch.progress, { reportAfterSec: watch.reportAfterSec });
      if (r.code === 0) return;
      const peer = stalledOn(r);
      what = peer ? `stalled (no data for ${watch.stallSec}s from ${peer})` : `failed (exit ${r.code})`;
      tail = conn.masker.mask(r.stderr).trim().split('\n').slice(-5).join('\n');
      if (peer) tail = tail.split('\n').filter((l) => !l.startsWith('pgha: apt-get stalled')).join('\n');
    } catch (err) {
      if (!(err instanceof CommandTimedOut)) throw err;
      what = `did not finish within ${limit}s`;
    }
    if (attempt >= attempts) {
      throw new HostError(conn.target.name, `apt-get update ${what}, ${attempts} tries; check the host's apt sources and proxy${tail ? `:\n${tail}` : ''}`);
    }
    watch.progress(`apt-get update ${what}: trying again (try ${attempt + 1} of ${attempts})`);
  }
}

/** Stall detection of apt's downloads (apt-watch.ts) and where its reports go. */
interface AptWatch {
  stallSec: number;
  reportAfterSec: number;
  progress: (text: string) => void;
}

/** `apt-get install --download-only`, ended and tried again when its downloads stall; a failure other than a stall throws as conn.run would. */
async function aptDownload(conn: Connection, download: string[], attempts: number, locks: AptLockWait, watch: AptWatch): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const r = await withStallReports(conn, 'package download', locks.run(watched(download, watch.stallSec), 30 * 60_000, false), watch.progress, { reportAfterSec: watch.reportAfterSec });
    if (r.code === 0) return;
    const peer = stalledOn(r);
    if (!peer) throw new HostError(conn.target.name, `apt-get install --download-only failed (exit ${r.code}): ${conn.masker.mask(r.stderr).trim().split('\n').slice(-3).join(' ')}`);
    const what = `package download stalled (no data for ${watch.stallSec}s from ${peer})`;
    if (attempt >= attempts) throw new HostError(conn.target.name, `${what}, ${attempts} tries; check the host's apt sources and proxy`);
    watch.progress(`${what}: trying again (try ${attempt + 1} of ${attempts})`);
  }
}

/** One of apt's or dpkg's locks: a file apt and dpkg lock with fcntl (F_SETLK, a write lock). */
export interface AptLock {
  path: string;
  /** As the operator reads it: "the apt lists lock". */
  name: string;
}

/** What `apt-get update` and `apt-get install` take, in the order apt takes them. */
export const APT_LOCKS: AptLock[] = [
  { path: '/var/lib/dpkg/lock-frontend', name: 'dpkg frontend lock' },
  { path: '/var/lib/dpkg/lock', name: 'dpkg lock' },
  { path: '/var/lib/apt/lists/lock', name: 'apt lists lock' },
  { path: '/var/cache/apt/archives/lock', name: 'apt archives lock' },
];

export interface LockHolder {
  lock: AptLock;
  /** -1 or 0 when the kernel does not say (an open-file-description lock, another PID namespace). */
  pid: number;
  /** Its command line, '' when unknown. */
  command: string;
}

// Every process holding a POSIX lock on one of the files, from /proc/locks (matched by device
// and inode, as the kernel prints them: hex major:minor:inode; waiters' lines have "->"), as
// "PATH<tab>PID<tab>COMMAND LINE". Needs nothing but coreutils and awk: apt's own lock timeout
// (DPkg::Lock::Timeout) covers only the dpkg locks, not `update`'s lists lock.
const LOCK_HOLDERS = [
  'for f do',
  '  s=$(stat -L -c "%Hd %Ld %i" -- "$f" 2>/dev/null) || continue',
  '  key=$(printf "%02x:%02x:%s" $s)',
  '  for pid in $(awk -v k="$key" \'$2 != "->" && $6 == k { print $5 }\' /proc/locks); do',
  '    cmd=$(tr "\\0\\n" "  " <"/proc/$pid/cmdline" 2>/dev/null)',
  '    printf "%s\\t%s\\t%s\\n" "$f" "$pid" "$cmd"',
  '  done',
  'done',
].join('\n');

/** The LOCK_HOLDERS script's output, read. */
export function parseLockHolders(stdout: string, locks: AptLock[] = APT_LOCKS): LockHolder[] {
  const out: LockHolder[] = [];
  for (const line of stdout.split('\n')) {
    const [path, pid, ...cmd] = line.split('\t');
    const lock = locks.find((l) => l.path === path);
    if (lock && /^-?\d+$/.test(pid ?? '')) out.push({ lock, pid: Number(pid), command: cmd.join('\t').trim() });
  }
  return out;
}

/** "the apt lists lock, held by process 89 (apt-get -q update)" */
export function describeHolder(h: LockHolder): string {
  const who = h.pid > 0 ? `process ${h.pid}${h.command ? ` (${h.command})` : ''}` : 'a process pgha cannot see';
  return `the ${h.lock.name}, held by ${who}`;
}

// What apt prints when a lock is taken ("Could not get lock /var/lib/apt/lists/lock. It is held
// by process 89 (apt-get)", "Unable to acquire the dpkg frontend lock ...").
const LOCK_ERROR = /^E: (Could not get lock|Unable to lock|Unable to acquire the dpkg frontend lock)/m;

/**
 * Runs apt commands once no other process holds apt's or dpkg's locks. While one does, it says
 * so (once per holder) and waits; all waits of one op together are bounded by `boundSec`, after
 * which it fails naming the holder. apt failing on a lock it found taken in the meantime is
 * waited for the same way, so a lock never costs an `apt-get update` try.
 */
export class AptLockWait {
  private readonly deadline: number;

  constructor(
    private readonly conn: Connection,
    private readonly locks: AptLock[],
    private readonly boundSec: number,
    private readonly progress: (text: string) => void = () => {},
    private readonly pollMs = 1000,
  ) {
    this.deadline = Date.now() + boundSec * 1000;
  }

  /** Current holders of the locks. */
  async holders(): Promise<LockHolder[]> {
    const r = await this.conn.run(['sh', '-c', LOCK_HOLDERS, 'sh', ...this.locks.map((l) => l.path)], { check: false, display: 'who holds apt\'s and dpkg\'s locks' });
    return parseLockHolders(this.conn.masker.mask(r.stdout), this.locks);
  }

  /** Returns once no lock is held; throws a HostError naming the holder after the bound. */
  async free(): Promise<void> {
    const started = Date.now();
    let shown = '';
    for (;;) {
      const held = await this.holders();
      if (held.length === 0) break;
      const what = describeHolder(held[0]);
      if (Date.now() >= this.deadline) {
        throw new HostError(
          this.conn.target.name,
          `gave up waiting for ${what}, after ${this.boundSec}s in all: let it finish (or end it, if it is stuck), then run pgha apply again`,
        );
      }
      if (what !== shown) this.progress(`waiting for ${what}`);
      shown = what;
      await sleep(Math.min(this.pollMs, Math.max(0, this.deadline - Date.now())));
    }
    if (shown) {
      this.progress(`apt and dpkg locks free after waiting ${((Date.now() - started) / 1000).toFixed(1)}s`);
    }
  }

  /**
   * Runs an apt command once the locks are free, as conn.run would (`check`: a non-zero exit
   * throws a CommandError). apt failing because it found a lock taken is waited out, never returned.
   */
  async run(cmd: Command, timeoutMs: number, check: boolean): Promise<RunResult> {
    for (;;) {
      await this.free();
      let stderr: string;
      try {
        const r = await this.conn.run(cmd, { check, timeoutMs });
        if (r.code === 0 || !LOCK_ERROR.test(r.stderr)) return r;
        stderr = r.stderr;
      } catch (err) {
        if (!(err instanceof CommandError) || !LOCK_ERROR.test(err.result.stderr)) throw err;
        stderr = err.result.stderr;
      }
      if (Date.now() >= this.deadline) {
        const line = stderr.split('\n').find((l) => LOCK_ERROR.test(l)) ?? '';
        throw new HostError(this.conn.target.name, `gave up waiting for apt's and dpkg's locks after ${this.boundSec}s in all: ${this.conn.masker.mask(line)}`);
      }
      await sleep(this.pollMs);
    }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- services ----

export interface ServiceOptions extends NotifyOptions {
  /** Default true: enabled at boot. */
  enabled?: boolean;
  /** Default true: running now (a unit that is still activating counts as running). */
  running?: boolean;
  /**
   * Start without waiting (`systemctl start --no-block`). etcd's unit is Type=notify: a member's
   * first start blocks until the cluster has quorum, so members start together and a gate waits.
   */
  noBlock?: boolean;
  /**
   * Clear a failed state first (`systemctl reset-failed`): a package that starts its service on
   * install with no usable settings (vip-manager, prometheus-postgres-exporter) leaves it failed at
   * systemd's start limit, which refuses every start until it is reset.
   */
  resetFailed?: boolean;
}

const ENABLED = ['enabled', 'static', 'alias'];

/** A systemd service enabled and running (or, with false, disabled / stopped). */
export function service(name: string, opts: ServiceOptions = {}): Operation {
  const wantEnabled = opts.enabled ?? true;
  const wantRunning = opts.running ?? true;
  const plan = async (facts: Facts) => {
    const f = await facts.service(name);
    const steps: string[] = [];
    const enabled = ENABLED.includes(f.enabled);
    const running = f.active === 'active' || f.active === 'activating';
    if (wantEnabled && !enabled) steps.push('enable');
    if (!wantEnabled && f.enabled === 'enabled') steps.push('disable');
    if (wantRunning && !running) steps.push('start');
    if (!wantRunning && running) steps.push('stop');
    return steps;
  };
  return {
    describe: `service ${name}`,
    needs: { services: [name] },
    notify: opts.notify,
    async check(_conn, facts) {
      const steps = await plan(facts);
      return steps.length === 0 ? null : { summary: steps.join(', ') };
    },
    async apply(conn, facts) {
      for (const step of await plan(facts)) {
        if (step === 'start' && opts.resetFailed) await conn.run(['systemctl', 'reset-failed', '--', name], { check: false });
        await conn.run(['systemctl', step, ...(step === 'start' && opts.noBlock ? ['--no-block'] : []), '--', name]);
      }
      facts.invalidate({ services: [name] });
    },
  };
}

/** Handler: `systemctl restart NAME` (`noBlock`, `resetFailed`: see ServiceOptions). */
export function restartService(name: string, opts: { noBlock?: boolean; resetFailed?: boolean } = {}): Handler {
  return {
    name: `restart ${name}`,
    run: async (conn) => {
      if (opts.resetFailed) await conn.run(['systemctl', 'reset-failed', '--', name], { check: false });
      await conn.run(['systemctl', 'restart', ...(opts.noBlock ? ['--no-block'] : []), '--', name]);
    },
  };
}

/** Handler: reload a service if it runs (a stopped one reads its config when it starts). */
export function reloadService(name: string): Handler {
  return {
    name: `reload ${name}`,
    run: async (conn) => {
      const active = await conn.run(['systemctl', 'is-active', '--quiet', '--', name], { check: false });
      if (active.code === 0) await conn.run(['systemctl', 'reload', '--', name]);
    },
  };
}

/** Handler: systemctl daemon-reload (after unit files changed). */
export const daemonReload: Handler = {
  name: 'systemctl daemon-reload',
  run: async (conn) => void (await conn.run(['systemctl', 'daemon-reload'])),
};

// ---- users and groups ----

/** A system group (created if missing; never changed once it exists). */
export function systemGroup(name: string): Operation {
  return {
    describe: `group ${name}`,
    needs: { groups: [name] },
    async check(_conn, facts) {
      return (await facts.group(name)) === null ? { summary: 'create system group' } : null;
    },
    async apply(conn, facts) {
      await conn.run(['groupadd', '--system', '--', name]);
      facts.invalidate({ groups: [name] });
    },
  };
}

export interface SystemUserOptions {
  group?: string; // primary group; default a group named like the user
  home?: string; // default /nonexistent
  shell?: string; // default /usr/sbin/nologin
}

/** A system user (created if missing; an existing user is left as it is). */
export function systemUser(name: string, opts: SystemUserOptions = {}): Operation {
  return {
    describe: `user ${name}`,
    needs: { users: [name] },
    async check(_conn, facts) {
      return (await facts.user(name)) === null ? { summary: 'create system user' } : null;
    },
    async apply(conn, facts) {
      const group = opts.group ? ['--gid', opts.group] : ['--user-group'];
      const home = ['--home-dir', opts.home ?? '/nonexistent', '--no-create-home'];
      await conn.run(['useradd', '--system', ...group, ...home, '--shell', opts.shell ?? '/usr/sbin/nologin', '--', name]);
      facts.invalidate({ users: [name] });
    },
  };
}

// ---- the escape hatch ----

export interface CommandOptions extends NotifyOptions {
  /** Skip when this command exits 0 (the state is already there). Read-only: runs in check mode. */
  unless?: Command;
  /** Run only when this command exits 0. Read-only: runs in check mode. */
  onlyIf?: Command;
  sudo?: boolean;
  user?: string;
  stdin?: string;
  timeoutMs?: number;
}

/** Any command. Without unless/onlyIf it runs (and reports changed) every time. */
export function command(describe: string, cmd: Command, opts: CommandOptions = {}): Operation {
  const runAs = { sudo: opts.sudo, user: opts.user };
  return {
    describe,
    notify: opts.notify,
    async check(conn) {
      if (opts.unless && (await conn.run(opts.unless, { ...runAs, check: false })).code === 0) return null;
      if (opts.onlyIf && (await conn.run(opts.onlyIf, { ...runAs, check: false })).code !== 0) return null;
      return { summary: `run ${conn.masker.mask(commandText(cmd))}` };
    },
    async apply(conn, facts) {
      await conn.run(cmd, { ...runAs, stdin: opts.stdin, timeoutMs: opts.timeoutMs });
      facts.clear(); // it may have changed anything
    },
  };
}
