// Engine logic on this machine through LocalConnection (same interface as SSH): unified
// diff, op planning, handlers, stage failure, check mode, waitFor, reporter output.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import {
  AptLockWait,
  Facts,
  Handler,
  Reporter,
  Rollout,
  StageFailed,
  command,
  dedupeHandlers,
  describeHolder,
  directory,
  file,
  packages,
  parseLockHolders,
  unifiedDiff,
  waitFor,
} from '../../../src/engine/index.js';
import { LocalConnection, Masker, localTarget } from '../../../src/ssh/index.js';
import { HostError } from '../../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'pgha-unit-engine-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const conn = new LocalConnection(localTarget({ name: 'local' }), { masker: new Masker(['Sup3rSecret']) });

function capture(): { reporter: Reporter; text: () => string } {
  const out = new PassThrough();
  let buf = '';
  out.on('data', (d) => (buf += d));
  return { reporter: new Reporter({ out, tty: false }), text: () => buf };
}

function recorder(name: string): Handler & { runs: number } {
  const h = { name, runs: 0, run: async () => void h.runs++ };
  return h;
}

describe('unified diff', () => {
  test('empty when equal; same output as diff -u', () => {
    assert.equal(unifiedDiff('a\n', 'a\n'), '');
    const cases: [string, string][] = [
      ['a\nb\nc\n', 'a\nB\nc\n'],
      ['', 'x\ny\n'],
      ['x\ny\n', ''],
      [Array.from({ length: 20 }, (_, i) => `${i}\n`).join(''), Array.from({ length: 20 }, (_, i) => (i === 2 || i === 17 ? 'X\n' : `${i}\n`)).join('') + 'end\n'],
      ['a\nb', 'a\nb\n'],
      ['a\nb\nc\nd\n', 'a\nc\nb\nd\n'],
    ];
    for (const [x, y] of cases) {
      writeFileSync(join(dir, 'x'), x);
      writeFileSync(join(dir, 'y'), y);
      let expected = '';
      try {
        execFileSync('diff', ['-u', '--label', 'current', '--label', 'wanted', join(dir, 'x'), join(dir, 'y')]);
      } catch (e) {
        expected = (e as { stdout: Buffer }).stdout.toString();
      }
      assert.equal(unifiedDiff(x, y), expected, JSON.stringify([x, y]));
    }
  });
});

describe('op planning', () => {
  test('file: no change when content and mode match; a change (with masked diff) when they differ', async () => {
    const path = join(dir, 'app.conf');
    writeFileSync(path, 'port = 5432\npassword = Sup3rSecret\n');
    chmodSync(path, 0o640);
    const same = file(path, 'port = 5432\npassword = Sup3rSecret\n', { mode: 0o640 });
    assert.equal(await same.check(conn, new Facts(conn)), null);

    const mode = await file(path, 'port = 5432\npassword = Sup3rSecret\n', { mode: 0o600 }).check(conn, new Facts(conn));
    assert.deepEqual(mode, { summary: 'mode 0640 -> 0600', diff: undefined });

    const content = await file(path, 'port = 5433\npassword = Sup3rSecret\n', { mode: 0o640 }).check(conn, new Facts(conn));
    assert.equal(content?.summary, 'content');
    assert.match(content!.diff!, /^-port = 5432\n\+port = 5433$/m);
    assert.ok(!content!.diff!.includes('Sup3rSecret') && content!.diff!.includes('********'));

    const hidden = await file(path, 'other\n', { mode: 0o640, sensitive: true }).check(conn, new Facts(conn));
    assert.deepEqual(hidden, { summary: 'content', diff: undefined });

    const created = await file(join(dir, 'new.conf'), 'x\n').check(conn, new Facts(conn));
    assert.equal(created?.summary, 'create');
  });

  test('directory and packages', async () => {
    const d = join(dir, 'data');
    assert.match((await directory(d, { mode: 0o700 }).check(conn, new Facts(conn)))!.summary, /^create/);
    execFileSync('mkdir', ['-m', '0700', d]);
    assert.equal(await directory(d, { mode: 0o700, owner: 'root' }).check(conn, new Facts(conn)), null);
    assert.equal((await directory(d, { mode: 0o750 }).check(conn, new Facts(conn)))!.summary, 'mode 0700 -> 0750');
    assert.equal(await packages(['coreutils']).check(conn, new Facts(conn)), null);
    assert.equal((await packages(['coreutils', 'pgha-no-such-package']).check(conn, new Facts(conn)))!.summary, 'install pgha-no-such-package');
  });

  test('file facts for many paths in one round trip', async () => {
    const commands: string[] = [];
    const c = new LocalConnection(localTarget(), { onCommand: (_h, cmd) => commands.push(cmd) });
    const facts = new Facts(c);
    await facts.prefetch({ files: [join(dir, 'app.conf'), join(dir, 'nope'), dir] });
    assert.equal(commands.length, 1);
    assert.deepEqual(await facts.file(join(dir, 'nope')), { exists: false });
    assert.equal((await facts.file(dir)).exists && (await facts.file(dir) as { kind: string }).kind, 'dir');
    assert.equal(commands.length, 1);
  });

  test('every kind of fact asked at once (files, packages, services, users, groups): one round trip, each read right', async () => {
    // Round trips, not commands: a batch's commands are each shown (onCommand), but sent once.
    let trips = 0;
    class Counting extends LocalConnection {
      protected override exec(text: string, stdin: string | undefined, timeoutMs: number) {
        trips++;
        return super.exec(text, stdin, timeoutMs);
      }
    }
    const facts = new Facts(new Counting(localTarget()));
    await facts.prefetch({
      files: [join(dir, 'nope'), dir],
      packages: ['coreutils', 'pgha-no-such-package'],
      services: ['pgha-no-such-service'],
      users: ['root', 'pgha-no-such-user'],
      groups: ['root', 'pgha-no-such-group'],
    });
    assert.equal(trips, 1);
    assert.deepEqual(await facts.file(join(dir, 'nope')), { exists: false });
    assert.equal(((await facts.file(dir)) as { kind: string }).kind, 'dir');
    assert.match((await facts.package('coreutils')) ?? '', /^\d/);
    assert.equal(await facts.package('pgha-no-such-package'), null);
    // No systemd here or no such unit: either way not running and no unit file.
    assert.equal((await facts.service('pgha-no-such-service')).enabled, 'not-found');
    assert.deepEqual([(await facts.user('root'))?.uid, await facts.user('pgha-no-such-user')], [0, null]);
    assert.deepEqual([await facts.group('root'), await facts.group('pgha-no-such-group')], [0, null]);
    assert.equal(trips, 1);
  });

  test('command: unless/onlyIf make it idempotent', async () => {
    const marker = join(dir, 'marker');
    const op = command('make marker', ['touch', marker], { unless: ['test', '-e', marker] });
    assert.match((await op.check(conn, new Facts(conn)))!.summary, /^run touch/);
    await op.apply(conn, new Facts(conn));
    assert.equal(await op.check(conn, new Facts(conn)), null);
    assert.equal(await command('never', ['false'], { onlyIf: ['false'] }).check(conn, new Facts(conn)), null);
  });
});

describe('packages: apt-get update that hangs or fails is tried again', () => {
  // A stand-in apt-get first on PATH: each `update` takes the next behaviour from a script.
  const bin = join(dir, 'apt-bin');
  // Each test's calls and plan in files of its own: an apt-get left running by an earlier test
  // (a killed try's child) must not shift this test's count.
  let log = '';
  let plan = '';
  let run = 0;
  function fakeApt(behaviours: string[]): void {
    execFileSync('mkdir', ['-p', bin]);
    run += 1;
    log = join(dir, `apt-calls-${run}`);
    plan = join(dir, `apt-plan-${run}`);
    writeFileSync(plan, behaviours.join('\n') + '\n');
    writeFileSync(log, '');
    writeFileSync(
      join(bin, 'apt-get'),
      [
        '#!/bin/sh',
        `echo "$*" >>${log}`,
        'case " $* " in *" update "*) ;; *) exit 0 ;; esac',
        `n=$(grep -c update ${log})`,
        `b=$(sed -n "\${n}p" ${plan})`,
        'case $b in',
        '  hang) exec sleep 30 ;;',
        '  fail) echo "E: Some index files failed to download." >&2; exit 100 ;;',
        '  locked) echo "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 89 (apt-get)" >&2; exit 100 ;;',
        '  *) exit 0 ;;',
        'esac',
      ].join('\n') + '\n',
    );
    chmodSync(join(bin, 'apt-get'), 0o755);
  }
  const calls = () => readFileSync(log, 'utf8').trim().split('\n');
  const savedPath = process.env.PATH;
  before(() => void (process.env.PATH = `${bin}:${savedPath}`));
  after(() => void (process.env.PATH = savedPath));

  test('a hanging try is killed, a failed one repeated, then the install runs once', async () => {
    fakeApt(['hang', 'fail', 'ok']);
    const started = Date.now();
    await packages(['pgha-no-such-package'], { updateTimeoutSec: 1 }).apply(conn, new Facts(conn));
    assert.ok(Date.now() - started < 15_000, 'the hanging update was killed at its limit');
    const c = calls();
    assert.equal(c.filter((l) => / update$/.test(l)).length, 3);
    // The downloads first (watched for a stall), then the install.
    assert.match(c[3], /Acquire::http::Timeout=30 .*install -y --download-only --no-install-recommends pgha-no-such-package$/);
    assert.match(c[4], /Acquire::http::Timeout=30 .*install -y --no-install-recommends pgha-no-such-package$/);
    assert.equal(c.length, 5);
  });

  test('after the last try: a located error with what apt said, and no install', async () => {
    fakeApt(['fail', 'hang', 'fail']);
    await assert.rejects(packages(['pgha-no-such-package'], { updateTimeoutSec: 1 }).apply(conn, new Facts(conn)), (e: Error) => {
      assert.equal(e.message, "local: apt-get update failed (exit 100), 3 tries; check the host's apt sources and proxy:\nE: Some index files failed to download.");
      return true;
    });
    assert.equal(calls().length, 3);
    fakeApt(['hang', 'hang']);
    await assert.rejects(packages(['pgha-no-such-package'], { updateTimeoutSec: 1, updateAttempts: 2 }).apply(conn, new Facts(conn)), /^HostError: local: apt-get update did not finish within 1s, 2 tries; check the host's apt sources and proxy$/);
  });
  test('apt failing on a lock taken meanwhile is waited out and costs no try', async () => {
    fakeApt(['locked', 'locked', 'ok']);
    const { reporter, text } = capture();
    const rollout = new Rollout({ reporter });
    const none = [{ path: join(dir, 'no-such-lock'), name: 'test lock' }];
    await rollout.stage('packages', [conn], () => [packages(['pgha-no-such-package'], { updateAttempts: 1, locks: none })]);
    assert.equal(calls().filter((l) => / update$/.test(l)).length, 3);
    assert.match(calls()[4], / install -y --no-install-recommends pgha-no-such-package$/);
    assert.match(text(), /^local: changed packages pgha-no-such-package: install pgha-no-such-package$/m);
  });

  test('a stalled update (no data) is reported while it waits, ended after stallSec and tried again', async () => {
    fakeApt(['hang', 'ok']);
    const lines: string[] = [];
    const started = Date.now();
    const none = [{ path: join(dir, 'no-such-lock'), name: 'test lock' }];
    const op = packages(['pgha-no-such-package'], { stallSec: 4, stallReportSec: 2, locks: none });
    await op.apply(conn, new Facts(conn), (text) => lines.push(text));
    const took = (Date.now() - started) / 1000;
    assert.ok(took >= 4 && took < 15, `took ${took}s`);
    assert.equal(calls().filter((l) => / update$/.test(l)).length, 2);
    assert.match(calls()[0], /^-q .* update$/);
    assert.ok(lines.some((l) => /^apt-get update waiting [234]s on .+ \(no data\)$/.test(l)), lines.join('\n'));
    assert.ok(lines.some((l) => /^apt-get update stalled \(no data for 4s from .+\): trying again \(try 2 of 3\)$/.test(l)), lines.join('\n'));
  });

  test('a lock error past the bound fails with what apt said', async () => {
    fakeApt(['locked', 'locked', 'locked', 'locked']);
    const none = [{ path: join(dir, 'no-such-lock'), name: 'test lock' }];
    await assert.rejects(
      packages(['pgha-no-such-package'], { lockTimeoutSec: 1, locks: none }).apply(conn, new Facts(conn)),
      (e: Error) => {
        assert.equal(e.message, "local: gave up waiting for apt's and dpkg's locks after 1s in all: E: Could not get lock /var/lib/apt/lists/lock. It is held by process 89 (apt-get)");
        return true;
      },
    );
  });
});

describe("apt's and dpkg's locks: who holds them, waiting for them", () => {
  // fcntl write locks, as apt and dpkg take them (F_SETLK), held by a python3 process.
  const lists = { path: join(dir, 'lists-lock'), name: 'apt lists lock' };
  const archives = { path: join(dir, 'archives-lock'), name: 'apt archives lock' };
  const holders: ReturnType<typeof spawn>[] = [];
  function hold(path: string, seconds: number): Promise<number> {
    writeFileSync(path, '');
    const code = `import fcntl, sys, time\nf = open(sys.argv[1], "w")\nfcntl.lockf(f, fcntl.LOCK_EX)\nprint("locked", flush=True)\ntime.sleep(float(sys.argv[2]))`;
    const child = spawn('python3', ['-c', code, path, String(seconds)], { stdio: ['ignore', 'pipe', 'inherit'] });
    holders.push(child);
    return new Promise((resolve) => child.stdout!.once('data', () => resolve(child.pid!)));
  }
  after(() => {
    for (const h of holders) if (h.exitCode === null) h.kill('SIGKILL');
  });

  test('parseLockHolders reads the probe output; describeHolder names the process', () => {
    const out = `${lists.path}\t89\tapt-get -q -o Acquire::Retries=3 update \n${archives.path}\t-1\t\n/other/lock\t7\tdpkg\nnoise\n`;
    const held = parseLockHolders(out, [lists, archives]);
    assert.deepEqual(held, [
      { lock: lists, pid: 89, command: 'apt-get -q -o Acquire::Retries=3 update' },
      { lock: archives, pid: -1, command: '' },
    ]);
    assert.equal(describeHolder(held[0]), 'the apt lists lock, held by process 89 (apt-get -q -o Acquire::Retries=3 update)');
    assert.equal(describeHolder(held[1]), 'the apt archives lock, held by a process pgha cannot see');
  });

  test('the probe finds the holder of an fcntl lock (and nothing once it is gone)', async () => {
    const pid = await hold(lists.path, 30);
    const holder = holders.at(-1)!;
    const wait = new AptLockWait(conn, [archives, lists], 10);
    try {
      const held = await wait.holders();
      assert.equal(held.length, 1);
      assert.equal(held[0].lock, lists);
      assert.equal(held[0].pid, pid);
      assert.match(held[0].command, /^\S*python3 -c import fcntl, sys, time .*\/lists-lock 30$/);
    } finally {
      holder.kill('SIGKILL');
      await new Promise((r) => holder.once('exit', r));
    }
    assert.deepEqual(await wait.holders(), []);
  });

  test('waits while the lock is held, says so once, and goes on when it is released', async () => {
    const pid = await hold(lists.path, 2.5);
    const notes: string[] = [];
    const started = Date.now();
    await new AptLockWait(conn, [lists, archives], 30, (t) => notes.push(t), 200).free();
    const waited = Date.now() - started;
    assert.ok(waited >= 1500 && waited < 10_000, `waited ${waited} ms`);
    assert.equal(notes.length, 2, notes.join('\n'));
    assert.match(notes[0], new RegExp(`^waiting for the apt lists lock, held by process ${pid} \\(\\S*python3 -c import fcntl, sys, time .*/lists-lock 2\\.5\\)$`));
    assert.match(notes[1], /^apt and dpkg locks free after waiting \d+\.\ds$/);
  });

  test('a holder that never ends: fails after the bound, naming its command line', async () => {
    const pid = await hold(archives.path, 120);
    const started = Date.now();
    await assert.rejects(new AptLockWait(conn, [lists, archives], 2, () => {}, 200).free(), (e: Error) => {
      assert.ok(e instanceof HostError);
      assert.match(
        e.message,
        new RegExp(`^local: gave up waiting for the apt archives lock, held by process ${pid} \\(\\S*python3 -c import fcntl.*/archives-lock 120\\), after 2s in all: let it finish \\(or end it, if it is stuck\\), then run pgha apply again$`),
      );
      return true;
    });
    assert.ok(Date.now() - started < 5000);
  });
});

describe('stages and handlers', () => {
  test('handlers are deduplicated and run once, only after a change', async () => {
    const reload = recorder('reload haproxy');
    const restart = recorder('restart patroni');
    assert.deepEqual(dedupeHandlers([reload, restart, reload]).map((h) => h.name), ['reload haproxy', 'restart patroni']);
    const { reporter, text } = capture();
    const rollout = new Rollout({ reporter });
    const p = join(dir, 'h1');
    const ops = () => [
      file(p, 'one\n', { notify: [reload] }),
      file(`${p}b`, 'two\n', { notify: [reload, restart] }),
    ];
    const r1 = await rollout.stage('config', [conn], ops);
    assert.equal(r1.changed, 2);
    assert.equal(reload.runs, 1);
    assert.equal(restart.runs, 1);
    const r2 = await rollout.stage('config again', [conn], ops);
    assert.equal(r2.changed, 0);
    assert.equal(reload.runs, 1);
    assert.equal(rollout.finish(), 0);
    assert.match(text(), /local: changed file .*h1: create/);
    assert.match(text(), /local: ran handler reload haproxy/);
    assert.match(text(), /RECAP\nlocal {2}ok=2 {2}changed=4 {2}failed=0/);
  });

  test('check mode reports and changes nothing, runs no handler', async () => {
    const reload = recorder('reload haproxy');
    const { reporter, text } = capture();
    const rollout = new Rollout({ check: true, reporter });
    const p = join(dir, 'checked');
    await rollout.stage('config', [conn], () => [file(p, 'a\n', { notify: [reload] }), command('touch', ['touch', `${p}2`])]);
    assert.ok(!existsSync(p) && !existsSync(`${p}2`));
    assert.equal(reload.runs, 0);
    assert.match(text(), /would change file .*checked: create\n {4}--- \/dev\/null\n {4}\+\+\+ .*\n {4}@@ -0,0 \+1 @@\n {4}\+a/);
    assert.match(text(), /would run handler reload haproxy/);
  });

  test('a failure stops the host, skips the rest and its handlers, and fails the stage', async () => {
    const reload = recorder('reload haproxy');
    const { reporter, text } = capture();
    const rollout = new Rollout({ reporter });
    const after = join(dir, 'after-failure');
    await assert.rejects(
      rollout.stage('boom', [conn], () => [
        file(join(dir, 'f1'), 'x\n', { notify: [reload] }),
        command('fail', ['sh', '-c', 'echo no Sup3rSecret >&2; exit 4']),
        file(after, 'never\n'),
      ]),
      (err: Error) => err instanceof StageFailed && /stage boom failed on local/.test(err.message),
    );
    assert.ok(!existsSync(after));
    assert.equal(reload.runs, 0);
    assert.match(text(), /local: FAILED fail: command failed \(exit 4\)/);
    assert.ok(!text().includes('Sup3rSecret'));
    assert.equal(rollout.finish(), 1);
    assert.match(text(), /changed=1 {2}failed=1 {2}skipped=1/);
  });
});

describe('waitFor', () => {
  test('polls until ready', async () => {
    let n = 0;
    await waitFor('three probes', async () => (++n >= 3 ? true : `only ${n}`), { timeoutMs: 5000, intervalMs: 10 });
    assert.equal(n, 3);
  });

  test('times out with the last reason; a throwing or hanging probe is not ready', async () => {
    await assert.rejects(
      waitFor('etcd quorum', async () => 'member db2 unhealthy', { timeoutMs: 100, intervalMs: 20 }),
      /timed out after 0\.1s waiting for etcd quorum; last: member db2 unhealthy/,
    );
    await assert.rejects(waitFor('x', async () => { throw new Error('ECONNREFUSED'); }, { timeoutMs: 50, intervalMs: 10 }), /last: ECONNREFUSED/);
    await assert.rejects(waitFor('y', () => new Promise(() => {}), { timeoutMs: 50, intervalMs: 10 }), /did not answer in time/);
  });
});
