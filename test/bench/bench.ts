// `npm run bench`: how fast pgha gets the container lab to a working cluster and how short an
// outage it gives, measured on the lab, printed with the goal beside each figure, and written to
// bench-output/bench.json and bench-output/bench.md. A benchmark never fails for being slow, but
// it fails (exit 1) when the cluster it measures is broken.
//
//   npm run bench                  everything (about 40 minutes)
//   npm run bench -- --only startup,deploy,noop,check,status,switchover,failover,backup,topology,restart,upgrade --runs 1
//   npm run bench -- --releases bookworm,trixie --only deploy,switchover,failover
//                                  the lab on Debian 12, then on Debian 13 (each release in turn on
//                                  the same lab dir; default: PGHA_LAB_RELEASE's), figures side by side
//   npm run bench -- --only degraded --minutes 10 [--profiles balanced,fast]
//                                  opt-in (not in "everything"): each timing profile (safe, balanced,
//                                  fast, or those of --profiles) under each degraded-network condition
//                                  of test/faults/degraded.ts for --minutes (default 2) with a writer
//                                  through HAProxy: unnecessary failovers per 10 minutes, writes lost,
//                                  client error rate
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir, cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import * as lab from '../lab/lab.js';
import { pgha, recap, REPO, type CliResult } from '../helpers.js';
import { faultContext, partitionLeader, poweroffLeader, runScenario, switchover, type FaultContext, type FaultRun } from '../faults/suite.js';
import { CONDITIONS, degradedTable, runCondition, type DegradedResult } from '../faults/degraded.js';
import type { TimingProfile } from '../../src/inventory/index.js';

interface Figure {
  name: string;
  /** The lab machines' Debian release. */
  release: string;
  unit: 's';
  runs: number[];
  median: number;
  goal?: string;
  met?: boolean;
  note?: string;
}

const args = process.argv.slice(2);
const arg = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const only = arg('only')?.split(',');
const releases = (arg('releases') ?? lab.labConfig().release).split(',') as lab.LabRelease[];
for (const r of releases) if (!lab.LAB_RELEASES.includes(r)) throw new Error(`--releases: ${r} is not one of ${lab.LAB_RELEASES.join(', ')}`);
const RELEASE_LABEL: Record<lab.LabRelease, string> = { bookworm: 'Debian 12', trixie: 'Debian 13' };
/** The release the figures being measured are of. */
let release: lab.LabRelease = releases[0];
const runsOverride = arg('runs') ? Number(arg('runs')) : undefined;
const wanted = (part: string) => !only || only.includes(part);
const runs = (n: number) => runsOverride ?? n;

const figures: Figure[] = [];
/** The degraded-network comparison (--only degraded), with the window it came from. */
const degraded: (DegradedResult & { unnecessaryPer10Min: number; minutes: number })[] = [];
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const round = (x: number) => Math.round(x * 100) / 100;
function record(name: string, values: number[], goalS?: number, note?: string): void {
  const m = round(median(values));
  const f: Figure = { name, release: RELEASE_LABEL[release], unit: 's', runs: values.map(round), median: m, note };
  if (goalS !== undefined) {
    f.goal = `< ${goalS} s`;
    f.met = m < goalS;
  }
  figures.push(f);
  console.log(`${RELEASE_LABEL[release]}: ${name}: median ${m} s over ${values.length} run(s) [${f.runs.join(', ')}]${f.goal ? `  goal ${f.goal}: ${f.met ? 'met' : 'MISSED'}` : ''}${note ? `  (${note})` : ''}`);
}

function must(r: CliResult, what: string): CliResult {
  if (r.code !== 0) {
    console.error(`${what} failed (exit ${r.code}): the cluster is broken, the benchmark stops.\n${r.stdout}\n${r.stderr}`);
    process.exit(1);
  }
  return r;
}

/** "stage NAME ok (...) in 1.2s" and "NAME: ready (3.4s)" lines of an apply, for where the time goes. */
function stageTimes(stdout: string): string {
  const parts: string[] = [];
  for (const line of stdout.split('\n')) {
    const st = /^stage (.+?) ok \(.*\) in ([\d.]+)s$/.exec(line);
    if (st && Number(st[2]) >= 1) parts.push(`${st[1]} ${st[2]}`);
    const gate = /^(.+?): ready \(([\d.]+)s\)$/.exec(line);
    if (gate && Number(gate[2]) >= 1) parts.push(`gate "${gate[1]}" ${gate[2]}`);
  }
  return parts.join(', ');
}

/** Seconds a whole process takes, `runs` times (no lab needed). */
function timeProcess(argv: string[], n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(argv[0], argv.slice(1), { cwd: REPO, stdio: 'ignore' });
    if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}`);
    out.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return out;
}

function inventoryWith(inventory: string, timing: string): string {
  const doc = parseDocument(readFileSync(inventory, 'utf8'));
  doc.set('timing', timing);
  const file = join(tmpdir(), `pgha-bench-${timing}.yml`);
  writeFileSync(file, doc.toString());
  return file;
}

async function main(): Promise<void> {
  execFileSync('npm', ['run', '-s', 'build'], { cwd: REPO, stdio: 'inherit' });
  const started = Date.now();
  for (const [i, r] of releases.entries()) {
    release = r;
    // One lab dir holds machines of one release: the previous release's lab goes first.
    if (i > 0 || lab.labConfig().release !== r) await lab.down();
    process.env.PGHA_LAB_RELEASE = r;
    await measure(i === 0);
  }
  finish(started);
}

/** Every wanted part on the lab of the current release (`startup` needs no lab: measured once). */
async function measure(first: boolean): Promise<void> {
  let inventory = lab.labInventoryPath();

  if (wanted('startup') && first) {
    // What the CLI costs before it does any work, against node itself in the same run.
    const node = timeProcess([process.execPath, '-e', '0'], runs(15));
    const version = timeProcess([process.execPath, 'bin/pgha.js', '--version'], runs(15));
    // The example inventory with a secrets file of its own (mode 0600, as pgha requires).
    const dir = mkdtempSync(join(tmpdir(), 'pgha-bench-'));
    const secrets = join(dir, 'example.secrets.yml');
    writeFileSync(secrets, ['superuser', 'replication', 'rewind', 'restapi'].map((k) => `${k}_password: bench-only-${k}\n`).join(''), { mode: 0o600 });
    const example = parseDocument(readFileSync(join(REPO, 'inventories/example.yml'), 'utf8'));
    example.set('secrets', secrets);
    writeFileSync(join(dir, 'example.yml'), example.toString());
    const validate = timeProcess([process.execPath, 'bin/pgha.js', 'validate', '-i', join(dir, 'example.yml')], runs(15));
    record('reference: node -e 0', node);
    const over = (xs: number[]) => `${round(median(xs) - median(node))} s over node -e 0, ratio ${round(median(xs) / median(node))}`;
    record('pgha --version', version, undefined, over(version));
    record('pgha validate -i inventories/example.yml', validate, undefined, over(validate));
    const overhead = (xs: number[]) => median(xs) - median(node);
    figures.push({ name: 'startup over node -e 0 (--version, validate)', release: '-', unit: 's', runs: [round(overhead(version)), round(overhead(validate))], median: round(Math.max(overhead(version), overhead(validate))), goal: '< 0.15 s', met: Math.max(overhead(version), overhead(validate)) < 0.15 });
    if (only?.length === 1) return;
  }

  if (wanted('deploy')) {
    const times: number[] = [];
    let where = '';
    for (let i = 0; i < runs(3); i++) {
      await lab.down();
      await lab.up();
      inventory = lab.labInventoryPath();
      const r = must(await pgha(['apply', '-i', inventory], { built: true }), 'deploy');
      times.push(r.ms / 1000);
      where = stageTimes(r.stdout);
    }
    record('deploy: bare lab to verified (warm apt proxy)', times, 80, `last run: ${where}`);
    // The same without TLS (tls: false), for the cost of TLS (goal: within +10 s); TLS last, so
    // the lab is left with the default cluster.
    const plain: number[] = [];
    for (let i = 0; i < runs(3); i++) {
      await lab.down();
      await lab.up();
      const doc = parseDocument(readFileSync(lab.labInventoryPath(), 'utf8'));
      doc.set('tls', false);
      const file = join(tmpdir(), 'pgha-bench-plain.yml');
      writeFileSync(file, doc.toString());
      plain.push(must(await pgha(['apply', '-i', file], { built: true }), 'deploy without TLS').ms / 1000);
    }
    record('deploy without TLS (tls: false): bare lab to verified', plain, undefined, `TLS costs ${round(median(times) - median(plain))} s (goal: within +10 s)`);
    await lab.down();
    await lab.up();
    inventory = lab.labInventoryPath();
    must(await pgha(['apply', '-i', inventory], { built: true }), 'deploy');
  } else if (!lab.isUp()) {
    await lab.up();
    must(await pgha(['apply', '-i', inventory], { built: true }), 'apply');
  }

  if (wanted('noop')) {
    const times: number[] = [];
    for (let i = 0; i < runs(5); i++) {
      const r = must(await pgha(['apply', '-i', inventory], { built: true }), 'no-op apply');
      const changed = [...recap(r.stdout).values()].reduce((n, c) => n + c.changed, 0);
      if (changed !== 0) {
        console.error(`a no-op apply changed ${changed} things:\n${r.stdout}`);
        process.exit(1);
      }
      times.push(r.ms / 1000);
    }
    record('no-op apply (converged cluster, incl. verify)', times, 5);
  }

  if (wanted('check')) {
    const times: number[] = [];
    for (let i = 0; i < runs(5); i++) times.push(must(await pgha(['apply', '-i', inventory, '--check'], { built: true }), 'apply --check').ms / 1000);
    record('apply --check (converged cluster)', times);
  }

  if (wanted('status')) {
    // The first call starts the keeper and connects; the timed ones find the hosts connected.
    must(await pgha(['status', '-i', inventory, '--json'], { built: true }), 'status');
    const times: number[] = [];
    for (let i = 0; i < runs(10); i++) times.push(must(await pgha(['status', '-i', inventory, '--json'], { built: true }), 'status').ms / 1000);
    record('pgha status (whole cluster, connections kept)', times, 0.4);
    // Every call connecting by itself (ssh.persist: 0): the first status, or one after a minute.
    const cold = join(mkdtempSync(join(tmpdir(), 'pgha-bench-')), 'inventory.yml');
    writeFileSync(cold, readFileSync(inventory, 'utf8').replace(/^ssh:\n/m, 'ssh:\n  persist: 0\n'));
    const coldTimes: number[] = [];
    for (let i = 0; i < runs(5); i++) coldTimes.push(must(await pgha(['status', '-i', cold, '--json'], { built: true }), 'status').ms / 1000);
    record('pgha status (whole cluster, every host connected afresh: ssh.persist 0)', coldTimes);
    const ref: number[] = [];
    for (let i = 0; i < runs(10); i++) {
      // Timed on the host itself: patronictl alone, without any SSH cost.
      const r = await lab.ssh('node1', "TIMEFORMAT=%R; { time sudo -u postgres patronictl -c /etc/patroni/config.yml list -f json >/dev/null; } 2>&1");
      ref.push(Number(r.stdout.trim().split('\n').pop()));
    }
    record('reference: patronictl list on one host (members only)', ref);
  }

  const ctx: FaultContext = await faultContext(inventory, () => {});
  if (wanted('switchover')) {
    const times: number[] = [];
    const wall: number[] = [];
    const overhead: number[] = [];
    for (let i = 0; i < runs(5); i++) {
      const { result } = await runScenario(ctx, 'switchover', pghaSwitchover(ctx, inventory, wall, overhead));
      if (result.problems.length) {
        console.error(`switchover run ${i + 1}: ${result.problems.join('; ')}`);
        process.exit(1);
      }
      times.push(result.unavailabilityS);
    }
    record('planned switchover: write unavailability through HAProxy', times, 3, 'alternating leaders');
    record('pgha switchover: the whole command', wall);
    record('pgha switchover: time outside the switchover itself (command minus the time from POST /switchover to done)', overhead, 1.5);
    const ref: number[] = [];
    for (let i = 0; i < runs(3); i++) {
      const leader = await currentLeader(inventory);
      const candidate = ctx.members.find((m) => m.name !== leader)!.name;
      // patronictl on the leader's host: Patroni's own switchover, without SSH or pgha.
      const r = await lab.ssh(leader, `TIMEFORMAT=%R; { time sudo -u postgres patronictl -c /etc/patroni/config.yml switchover --leader ${leader} --candidate ${candidate} --force >/dev/null; } 2>&1`);
      ref.push(Number(r.stdout.trim().split('\n').pop()));
      // patronictl returns when Patroni is done; HAProxy notices the roles within its checks
      // (inter 2 s x fall 3 on the replicas port), so verify may need a few seconds more.
      let v = await pgha(['verify', '-i', inventory], { built: true });
      for (let t = Date.now(); v.code !== 0 && Date.now() - t < 30_000; v = await pgha(['verify', '-i', inventory], { built: true })) await new Promise((r) => setTimeout(r, 2000));
      must(v, 'verify after patronictl switchover');
    }
    record('reference: patronictl switchover on the leader host', ref);
    // Patroni's own switchover (POST /switchover, no drain in HAProxy first) under the same writer:
    // what pgha's drain saves clients of the primary port (writes refused as read-only).
    const direct: number[] = [];
    const readOnly: number[] = [];
    for (let i = 0; i < runs(3); i++) {
      const { result } = await runScenario(ctx, 'Patroni POST /switchover', switchover(ctx));
      if (result.lost) {
        console.error(`Patroni POST /switchover run ${i + 1}: ${result.problems.join('; ')}`);
        process.exit(1);
      }
      direct.push(result.unavailabilityS);
      readOnly.push(result.readOnlyErrors);
    }
    record('reference: Patroni POST /switchover (no drain): write unavailability through HAProxy', direct, undefined, `writes refused as read-only per run: ${readOnly.join(', ')}`);
  }

  if (wanted('failover')) {
    // Goals: the default profile (balanced) under 20 s, fast under 12 s; safe is Patroni's defaults, measured only.
    // Debian 13's Patroni 4 runs both with ttl 20 s (its minimum): ttl + ~3 s to elect, promote and route.
    const goals: Record<TimingProfile, number | undefined> =
      release === 'bookworm' ? { balanced: 20, fast: 12, safe: undefined } : { balanced: 25, fast: 25, safe: undefined };
    for (const profile of ['balanced', 'fast', 'safe'] as const) {
      const inv = inventoryWith(inventory, profile);
      must(await pgha(['apply', '-i', inv], { built: true }), `apply with timing ${profile}`);
      const pctx = await faultContext(inv, () => {});
      for (const [name, fault] of [
        ['leader powered off', poweroffLeader(pctx)],
        ['leader partitioned', partitionLeader(pctx)],
      ] as const) {
        const times: number[] = [];
        for (let i = 0; i < runs(3); i++) {
          const { result } = await runScenario(pctx, name, fault);
          if (result.problems.length) {
            console.error(`${name} (${profile}) run ${i + 1}: ${result.problems.join('; ')}`);
            process.exit(1);
          }
          times.push(result.unavailabilityS);
        }
        record(`unplanned failover, ${name}, timing ${profile}: write unavailability`, times, goals[profile]);
      }
    }
    must(await pgha(['apply', '-i', inventory], { built: true }), 'apply back to the lab inventory');
  }

  if (only?.includes('degraded')) {
    // Each profile under each condition for --minutes; a lost write or a broken cluster stops the bench.
    const minutes = Number(arg('minutes') ?? 2);
    if (!(minutes > 0)) throw new Error(`--minutes must be a positive number, got ${arg('minutes')}`);
    const all = ['safe', 'balanced', 'fast'] as const;
    const profiles = (arg('profiles')?.split(',') ?? [...all]) as TimingProfile[];
    const unknown = profiles.filter((p) => !(all as readonly string[]).includes(p));
    if (unknown.length || !profiles.length) throw new Error(`--profiles: expected some of ${all.join(', ')}, got ${arg('profiles')}`);
    for (const profile of all.filter((p) => profiles.includes(p))) {
      const inv = inventoryWith(inventory, profile);
      must(await pgha(['apply', '-i', inv], { built: true }), `apply with timing ${profile}`);
      const pctx = await faultContext(inv, () => {});
      for (const condition of CONDITIONS) {
        const { result, degraded: d } = await runCondition(pctx, condition, minutes * 60);
        const row = { ...d, minutes, unnecessaryPer10Min: d.heldS > 0 ? Math.round((d.unnecessary / d.heldS) * 600 * 10) / 10 : 0 };
        degraded.push(row);
        console.log(`${RELEASE_LABEL[release]}: ${condition.name}, timing ${profile}, ${d.heldS} s: ${d.changes.length} leader change(s), ${d.unnecessary} unnecessary (${row.unnecessaryPer10Min} per 10 min), error rate ${(d.errorRate * 100).toFixed(2)}% (${d.errors}/${d.attempts}), lost ${d.lost}`);
        if (result.problems.length) {
          console.error(`${condition.name} (${profile}): ${result.problems.join('; ')}`);
          finish(Date.now());
          process.exit(1);
        }
      }
    }
    must(await pgha(['apply', '-i', inventory], { built: true }), 'apply back to the lab inventory');
  }

  if (wanted('backup')) {
    // About 1 GB of data (pgbench scale 70), then a full backup and a point-in-time restore of it.
    const leaderName = await currentLeader(inventory);
    const major = Math.floor(Number((await lab.ssh(leaderName, "sudo -u postgres psql -XAtc 'show server_version_num'")).stdout.trim()) / 10000);
    const init = await lab.ssh(leaderName, `sudo -u postgres /usr/lib/postgresql/${major}/bin/pgbench -i -q -s 70 postgres`, { timeoutMs: 30 * 60_000 });
    if (init.code !== 0) {
      console.error(`pgbench -i failed on ${leaderName}: ${init.stderr}`);
      process.exit(1);
    }
    const size = (await lab.ssh(leaderName, "sudo -u postgres psql -XAtc \"select pg_size_pretty(pg_database_size('postgres'))\"")).stdout.trim();
    const backup = must(await pgha(['backup', '-i', inventory, '--type', 'full'], { built: true, timeoutMs: 60 * 60_000 }), 'backup');
    record(`full backup of a ${size} database`, [backup.ms / 1000]);
    const target = (await lab.ssh(leaderName, "sudo -u postgres psql -XAtc \"select to_char(now() at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS') || '+00'\"")).stdout.trim();
    await new Promise((r) => setTimeout(r, 2000));
    const restore = must(await pgha(['restore', '-i', inventory, '--to', target, '--yes'], { built: true, timeoutMs: 60 * 60_000 }), 'restore');
    record(`point-in-time restore of the whole cluster (${size}, 3 members)`, [restore.ms / 1000], undefined, 'includes rebuilding both replicas from the repository and a new full backup');
    await lab.ssh(await currentLeader(inventory), "sudo -u postgres psql -XAtc 'drop table if exists pgbench_accounts, pgbench_branches, pgbench_history, pgbench_tellers'");
  }

  if (wanted('topology')) {
    // Day 2 with about 1 GB of data (pgbench scale 70) and a recent full backup, as a scheduled
    // one would be: a replica added (node5, cloned from the repository), removed again, and a
    // rebuilt replica brought back by pgha replace (its packages included).
    await lab.up(5);
    const base = withNode5(inventory, 'base');
    const add = withNode5(inventory, 'add', { postgres: ['node1', 'node2', 'node3', 'node5'], haproxy: ['node1', 'node2', 'node3', 'node5'] });
    must(await pgha(['apply', '-i', base], { built: true }), 'apply with node5 as a host');
    const leaderName = await currentLeader(inventory);
    const major = Math.floor(Number((await lab.ssh(leaderName, "sudo -u postgres psql -XAtc 'show server_version_num'")).stdout.trim()) / 10000);
    const init = await lab.ssh(leaderName, `sudo -u postgres /usr/lib/postgresql/${major}/bin/pgbench -i -q -s 70 postgres`, { timeoutMs: 30 * 60_000 });
    if (init.code !== 0) {
      console.error(`pgbench -i failed on ${leaderName}: ${init.stderr}`);
      process.exit(1);
    }
    const size = (await lab.ssh(leaderName, "sudo -u postgres psql -XAtc \"select pg_size_pretty(pg_database_size('postgres'))\"")).stdout.trim();
    must(await pgha(['backup', '-i', inventory, '--type', 'full'], { built: true, timeoutMs: 60 * 60_000 }), 'backup');
    const added = must(await pgha(['apply', '-i', add], { built: true, timeoutMs: 60 * 60_000 }), 'apply adding node5');
    const join = /^Patroni: node5 streams from the leader: ready \(([\d.]+)s\)$/m.exec(added.stdout)?.[1];
    record(`add a replica (${size} database): pgha apply, from the inventory edit to streaming`, [added.ms / 1000], undefined, `packages, files and the clone; the clone and catch-up alone: ${join} s; ${stageTimes(added.stdout)}`);
    const removed = must(await pgha(['apply', '-i', base], { built: true }), 'apply removing node5');
    record('remove a replica: pgha apply, from the inventory edit to its member key and slot gone', [removed.ms / 1000]);
    const victim = ['node1', 'node2', 'node3'].find((h) => h !== leaderName)!;
    await lab.poweroff(victim);
    const rebuilt = await lab.rebuild(victim);
    const replaced = must(await pgha(['replace', '-i', base, victim, '--yes'], { built: true, timeoutMs: 60 * 60_000 }), 'replace');
    // replace's gate names the member when it is new to Patroni, else waits for every replica.
    const clone = (new RegExp(`^Patroni: ${victim} streams from the leader: ready \\(([\\d.]+)s\\)$`, 'm').exec(replaced.stdout) ?? /^Patroni: every replica streaming from the leader: ready \(([\d.]+)s\)$/m.exec(replaced.stdout))?.[1] ?? '?';
    record(`replace a rebuilt replica (${size} database): pgha replace, from the new host key to verified`, [replaced.ms / 1000], undefined, `machine rebuilt in ${(rebuilt.ms / 1000).toFixed(1)} s before; the clone and catch-up alone: ${clone} s; ${stageTimes(replaced.stdout)}`);
    await lab.ssh(await currentLeader(inventory), "sudo -u postgres psql -XAtc 'drop table if exists pgbench_accounts, pgbench_branches, pgbench_history, pgbench_tellers'");
  }

  if (wanted('restart')) {
    // A setting that needs a restart changed by apply (outside the measurement), then `pgha restart`
    // under the writer: replicas, a switchover, the old leader.
    const ctx2 = await faultContext(inventory, () => {});
    const gaps: number[] = [];
    const wall: number[] = [];
    for (let i = 0; i < runs(3); i++) {
      const inv = inventoryWithParameter(inventory, 'max_connections', 201 + (i % 2));
      must(await pgha(['apply', '-i', inv], { built: true }), 'apply (max_connections)');
      await waitPending(inv);
      const m = await commandUnderWriter(ctx2, 'rolling restart', i, ['restart', '-i', inv, '--yes']);
      gaps.push(m.gap);
      wall.push(m.wall);
    }
    record('rolling restart of 3 members (pgha restart): longest write gap', gaps, undefined, 'replicas one at a time, one switchover, the old leader restarted by its demotion');
    record('rolling restart of 3 members (pgha restart): the whole command', wall);
    must(await pgha(['apply', '-i', inventory, '--restart-pending'], { built: true }), 'apply back to the lab inventory');
  }

  if (wanted('upgrade') && release === 'bookworm') {
    // Fresh machines with Debian 12's older postgresql-15 and haproxy pinned, then `pgha upgrade`
    // to bookworm-security's under the writer (Debian 12 only: the versions are bookworm's).
    const gaps: number[] = [];
    const wall: number[] = [];
    for (let i = 0; i < runs(1); i++) {
      await lab.down();
      await lab.up();
      inventory = lab.labInventoryPath();
      const old = inventoryWithVersions(inventory, { 'postgresql-15': '15.18-0+deb12u1', haproxy: '2.6.12-1+deb12u3' });
      const next = inventoryWithVersions(inventory, { 'postgresql-15': '15.20-0+deb12u1', haproxy: '2.6.12-1+deb12u4' });
      must(await pgha(['apply', '-i', old], { built: true }), 'deploy with the older versions pinned');
      const uctx = await faultContext(next, () => {});
      const m = await commandUnderWriter(uctx, 'minor upgrade', i, ['upgrade', '-i', next, '--yes'], 30 * 60_000);
      gaps.push(m.gap);
      wall.push(m.wall);
    }
    record('minor upgrade of 3 members (postgresql-15 15.18 -> 15.20, haproxy deb12u3 -> deb12u4): longest write gap', gaps, undefined, 'HAProxy hosts one at a time, PostgreSQL replicas, one switchover, the old leader');
    record('minor upgrade of 3 members: the whole command (incl. apt-get update, preflight, verify)', wall);
    must(await pgha(['apply', '-i', inventory], { built: true }), 'apply back to the lab inventory');
  }
}

/**
 * One pgha command under the lost-write checker's writer: its longest write gap and its wall time.
 * A failed command or a checker problem (a lost write, a double primary) ends the benchmark.
 */
async function commandUnderWriter(ctx: FaultContext, scenario: string, run: number, argv: string[], timeoutMs?: number): Promise<{ gap: number; wall: number }> {
  let wall = 0;
  const { result } = await runScenario(ctx, scenario, async (r) => {
    const res = await pgha(argv, { built: true, ...(timeoutMs ? { timeoutMs } : {}) });
    r.note(`pgha ${argv[0]}: exit ${res.code}`);
    if (res.code !== 0) throw new Error(`pgha ${argv[0]} failed: ${res.stdout}${res.stderr}`);
    wall = res.ms / 1000;
  });
  if (result.problems.length) {
    console.error(`${scenario} run ${run + 1}: ${result.problems.join('; ')}`);
    process.exit(1);
  }
  return { gap: result.unavailabilityS, wall };
}

/** The lab inventory with node5 as a host (no role unless given) and these roles, in a temp file. */
function withNode5(inventory: string, name: string, roles: Record<string, string[]> = {}): string {
  const doc = parseDocument(readFileSync(inventory, 'utf8'));
  doc.setIn(['hosts', 'node5', 'address'], lab.machineAddress('node5'));
  for (const [role, hosts] of Object.entries(roles)) doc.setIn(['roles', role], doc.createNode(hosts, { flow: true }));
  const file = join(tmpdir(), `pgha-bench-topology-${name}.yml`);
  writeFileSync(file, doc.toString());
  return file;
}

function inventoryWithParameter(inventory: string, name: string, value: number): string {
  const doc = parseDocument(readFileSync(inventory, 'utf8'));
  doc.setIn(['patroni', 'parameters', name], value);
  const file = join(tmpdir(), `pgha-bench-${name}-${value}.yml`);
  writeFileSync(file, doc.toString());
  return file;
}

function inventoryWithVersions(inventory: string, versions: Record<string, string>): string {
  const doc = parseDocument(readFileSync(inventory, 'utf8'));
  doc.setIn(['packages', 'versions'], versions);
  const file = join(mkdtempSync(join(tmpdir(), 'pgha-bench-')), 'inventory.yml');
  writeFileSync(file, doc.toString());
  return file;
}

/** Until Patroni marks every member pending_restart (after a PATCH /config). */
async function waitPending(inventory: string): Promise<void> {
  for (let i = 0; i < 60; i++) {
    const st = JSON.parse((await pgha(['status', '-i', inventory, '--json'], { built: true })).stdout) as { members: { pending_restart: boolean }[] };
    if (st.members.length && st.members.every((m) => m.pending_restart)) return;
    await new Promise((r) => setTimeout(r, 1000));
  }
  throw new Error('the members were not marked pending_restart within a minute');
}

function finish(started: number): void {
  const machine = `${cpus().length} cores (${cpus()[0]?.model ?? '?'}), ${Math.round(totalmem() / 2 ** 30)} GiB, Debian 12, the container lab (systemd-nspawn; machines: ${releases.map((r) => RELEASE_LABEL[r]).join(', ')})`;
  const date = new Date().toISOString().slice(0, 10);
  const md = [
    `Measured ${date} on ${machine}; \`npm run bench\` (${Math.round((Date.now() - started) / 60000)} min).`,
    '',
    '| measurement | release | median (s) | runs (s) | goal | |',
    '| --- | --- | --- | --- | --- | --- |',
    ...figures.map((f) => `| ${f.name} | ${f.release} | ${f.median} | ${f.runs.join(', ')} | ${f.goal ?? ''} | ${f.goal ? (f.met ? 'met' : 'missed') : ''} |`),
    '',
    ...figures.filter((f) => f.note).map((f) => `- ${f.name} (${f.release}): ${f.note}`),
    ...(degraded.length
      ? [
          '',
          `Degraded networks (${degraded[0].minutes} min per condition and profile; unnecessary failovers per 10 minutes of the condition):`,
          '',
          '| condition | profile | held (s) | unnecessary failovers per 10 min | leader changes (unnecessary / necessary) | writes lost | client error rate | verified |',
          '| --- | --- | --- | --- | --- | --- | --- | --- |',
          ...degraded.map((d) => `| ${d.condition} | ${d.profile} | ${d.heldS} | ${d.unnecessaryPer10Min} | ${d.changes.length} (${d.unnecessary} / ${d.necessary}) | ${d.lost} | ${(d.errorRate * 100).toFixed(2)}% (${d.errors}/${d.attempts}) | ${d.verified ? 'yes' : 'NO'} |`),
          '',
          degradedTable(degraded),
        ]
      : []),
  ].join('\n');
  const dir = join(REPO, 'bench-output');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'bench.json'), `${JSON.stringify({ date, machine, figures, degraded }, null, 2)}\n`);
  writeFileSync(join(dir, 'bench.md'), `${md}\n`);
  console.log(`\n${md}\n\nwritten: bench-output/bench.json, bench-output/bench.md`);
}

async function currentLeader(inventory: string): Promise<string> {
  // The JSON names the leader whatever the verdict (exit 1 degraded still has one).
  const r = await pgha(['status', '-i', inventory, '--json'], { built: true });
  const leader = (JSON.parse(r.stdout) as { members: { name: string; role: string }[] }).members.find((m) => m.role === 'leader');
  if (!leader) throw new Error('no leader');
  return leader.name;
}

/** A planned switchover with `pgha switchover` (the built CLI) to the first replica; records its wall time and what it spent outside the switchover. */
function pghaSwitchover(ctx: FaultContext, inventory: string, wall: number[] = [], overhead: number[] = []) {
  return async (r: FaultRun) => {
    const candidate = ctx.members.find((m) => m.name !== r.leader)!.name;
    const res = await pgha(['switchover', '-i', inventory, '--candidate', candidate, '--yes'], { built: true });
    r.note(`pgha switchover to ${candidate}: exit ${res.code}`);
    if (res.code !== 0) throw new Error(`pgha switchover failed: ${res.stdout}${res.stderr}`);
    const inner = Number(/switchover done: .* in ([\d.]+)s/.exec(res.stdout)?.[1]);
    wall.push(res.ms / 1000);
    overhead.push(res.ms / 1000 - inner);
  };
}

await main();
