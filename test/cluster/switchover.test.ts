// pgha switchover and failover against the lab's real cluster: a planned switchover (a write
// through HAProxy lands on the new leader), refusals that change nothing, no terminal without
// --yes, and a failover after the leader's machine loses power. Leaves a verified cluster behind.
import { spawn } from 'node:child_process';
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import * as lab from '../lab/lab.js';
import { PGHA_CLI, REPO, ensureCluster, pgha } from '../helpers.js';
import { shellQuote } from '../../src/ssh/quote.js';

let inventory: string;
const DB = ['node1', 'node2', 'node3'];
const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));

interface StatusDoc {
  verdict: string;
  reasons: string[];
  leader: string | null;
  members: { name: string; role: string; state: string }[];
  scheduled_switchover: { at: string; from?: string; to?: string } | null;
}

async function status(): Promise<StatusDoc> {
  const r = await pgha(['status', '-i', inventory, '--json'], { timeoutMs: 60_000 });
  return JSON.parse(r.stdout) as StatusDoc;
}

async function until<T>(what: string, timeoutMs: number, fn: () => Promise<T | undefined | false>): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await sleep(2000);
  }
  assert.fail(`timed out after ${timeoutMs / 1000}s waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

const verified = async () => (await pgha(['verify', '-i', inventory])).code === 0;
const leader = async () => (await status()).leader;

async function sh(host: string, cmd: string, input?: string): Promise<string> {
  const r = await lab.ssh(host, cmd, { timeoutMs: 60_000, input });
  assert.equal(r.code, 0, `${host}: ${cmd}: ${r.stderr}`);
  return r.stdout.trim();
}

/** SQL through an HAProxy host's primary port (5000), run with psql on `from`, as a client would. */
function viaPrimaryPort(from: string, haproxyHost: string, sql: string): Promise<string> {
  const password = (parse(readFileSync(lab.labConfig().secretsPath, 'utf8')) as { superuser_password: string }).superuser_password;
  // The lab runs TLS (the default): the server behind HAProxy is verified as a client would.
  const conninfo = `host=${lab.machineAddress(haproxyHost)} port=5000 user=postgres dbname=postgres connect_timeout=5 sslmode=verify-full sslrootcert=/etc/pgha/tls/ca.crt`;
  return sh(from, `read -r PGPASSWORD; export PGPASSWORD; psql -XAtq -v ON_ERROR_STOP=1 '${conninfo}' -c "${sql}"`, `${password}\n`);
}

/**
 * Runs pgha in a terminal (util-linux `script` gives it a pseudo-terminal), answers its prompt
 * once the prompt appears, and resolves with the exit code and the text the terminal showed.
 */
function inTerminal(args: string[], prompt: RegExp, answer: string): Promise<{ code: number | null; out: string }> {
  // A wide terminal: the prompt would otherwise be wrapped at 80 columns, mid-word.
  const cmd = `stty cols 250 rows 50; exec ${[process.execPath, ...PGHA_CLI, ...args].map((a) => shellQuote(a)).join(' ')}`;
  const child = spawn('script', ['-qefc', cmd, '/dev/null'], { cwd: REPO, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let answered = false;
  // What a reader sees: no escape sequences, line wraps and runs of spaces as one space.
  const plain = () => out.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\s+/g, ' ');
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  const onData = (d: Buffer) => {
    out += d;
    if (!answered && prompt.test(plain())) {
      answered = true;
      child.stdin.write(`${answer}\r`);
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  return new Promise((res) =>
    child.on('close', (code) => {
      clearTimeout(timer);
      child.stdin.destroy();
      res({ code, out: plain() });
    }),
  );
}

describe('pgha switchover and failover on the lab', { timeout: 30 * 60_000 }, () => {
  before(async () => {
    inventory = await ensureCluster();
  });

  test('switchover to a named candidate: it leads, HAProxy routes writes to it', async (t) => {
    const old = await leader();
    assert.ok(old);
    const candidate = DB.find((n) => n !== old)!;
    const r = await pgha(['switchover', '-i', inventory, '--candidate', candidate, '--yes']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    t.diagnostic(r.stdout.trim());
    assert.match(r.stdout, new RegExp(`Patroni answered 200 after [\\d.]+s: Successfully switched over to "${candidate}"`));
    assert.match(r.stdout, new RegExp(`HAProxy routes the primary port to ${candidate} on node1, node2, node3 after`));
    assert.match(r.stdout, new RegExp(`${old} streams from ${candidate} after`));
    assert.match(r.stdout, new RegExp(`switchover done: ${old} -> ${candidate} in`));
    assert.equal(await leader(), candidate);

    // A write through the primary port of an HAProxy host that is not the new leader, read back on the new leader itself.
    const token = `t${Date.now()}`;
    const via = DB.find((n) => n !== candidate)!;
    await viaPrimaryPort(via, via, `create table if not exists pgha_switchover_test(token text primary key); insert into pgha_switchover_test values ('${token}')`);
    assert.equal(await sh(candidate, `sudo -u postgres psql -XAtc "select pg_is_in_recovery(), count(*) from pgha_switchover_test where token = '${token}'"`), 'f|1');
  });

  test('a candidate that is not a member: exit 2, a clear error, the leader unchanged', async () => {
    const before = await leader();
    const r = await pgha(['switchover', '-i', inventory, '--candidate', 'nosuchnode', '--yes']);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /pgha: nosuchnode is not a member of cluster lab; members: node\d, node\d, node\d/);
    assert.equal(await leader(), before);
  });

  test('a candidate whose Patroni is stopped: exit 1, a clear error, the leader unchanged', async () => {
    const before = await leader();
    const candidate = DB.find((n) => n !== before)!;
    await sh(candidate, 'sudo systemctl stop patroni');
    try {
      const r = await pgha(['switchover', '-i', inventory, '--candidate', candidate, '--yes']);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, new RegExp(`pgha: ${candidate} (is stopped, not running: it cannot take over|is not a Patroni member right now)`));
      assert.equal(await leader(), before);
    } finally {
      await sh(candidate, 'sudo systemctl start patroni');
    }
    await until('the cluster to verify again', 300_000, verified);
  });

  test('without a terminal, switchover and failover need --yes (exit 2, nothing contacted)', async () => {
    const before = await leader();
    const r = await pgha(['switchover', '-i', inventory, '--candidate', DB.find((n) => n !== before)!]);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /no terminal to ask on: add --yes/);
    const f = await pgha(['failover', '-i', inventory, '--candidate', 'node1']);
    assert.equal(f.code, 2, f.stdout + f.stderr);
    assert.match(f.stderr, /no terminal to ask on: add --yes/);
    assert.equal(await leader(), before);
  });

  test('in a terminal, the prompt asks first; "n" changes nothing (exit 1)', async () => {
    const before = (await leader())!;
    const candidate = DB.find((n) => n !== before)!;
    const r = await inTerminal(['switchover', '-i', inventory, '--candidate', candidate], /disconnected for a few seconds/, 'n');
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, new RegExp(`Switch over cluster lab from ${before} to ${candidate} now\\? Clients of the primary`));
    assert.match(r.out, /pgha: not confirmed: nothing was changed/);
    assert.equal(await leader(), before);
  });

  test('--at, confirmed with "y": Patroni schedules it, status shows it, it runs at that time', async (t) => {
    const old = (await leader())!;
    const candidate = DB.find((n) => n !== old)!;
    const at = new Date(Math.ceil((Date.now() + 30_000) / 1000) * 1000);
    const atText = at.toISOString().replace('.000Z', 'Z');
    const r = await inTerminal(['switchover', '-i', inventory, '--candidate', candidate, '--at', atText], /disconnected for a few seconds/, 'y');
    t.diagnostic(r.out.trim());
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, new RegExp(`Switch over cluster lab from ${old} to ${candidate} at ${atText.replace('Z', '.000Z')}\\?`));
    assert.match(r.out, /Patroni scheduled the switchover \(202\)/);
    const pending = await status();
    assert.equal(pending.leader, old, 'nothing happens before the time');
    assert.equal(Date.parse(pending.scheduled_switchover?.at ?? ''), at.getTime(), JSON.stringify(pending.scheduled_switchover));
    // Not before its time: the leader is unchanged until shortly before it.
    while (Date.now() < at.getTime() - 4000) {
      assert.equal(await leader(), old, `the leader changed before ${atText}`);
      await sleep(2000);
    }
    const changed = await until(`${candidate} to lead after ${atText}`, 120_000, async () => (await leader()) === candidate && Date.now());
    t.diagnostic(`leader changed ${((changed - at.getTime()) / 1000).toFixed(1)} s after the scheduled time (seen by polling status)`);
    assert.ok(changed >= at.getTime(), 'not before the scheduled time');
    assert.equal((await status()).scheduled_switchover, null);
    await until('the cluster to verify again', 300_000, verified);
  });

  test('failover with a healthy leader is refused and points to switchover', async () => {
    const current = (await leader())!;
    const other = DB.find((n) => n !== current)!;
    const r = await pgha(['failover', '-i', inventory, '--candidate', other, '--yes']);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`the cluster has a healthy leader, ${current}.*pgha switchover --candidate ${other}`));
    const same = await pgha(['failover', '-i', inventory, '--candidate', current, '--yes']);
    assert.equal(same.code, 0, same.stdout + same.stderr);
    assert.match(same.stdout, new RegExp(`${current} is the healthy leader already`));
  });

  test('failover after the leader machine loses power, then the old leader rejoins as a replica', async (t) => {
    const old = (await leader())!;
    const candidate = DB.find((n) => n !== old)!;
    await lab.poweroff(old);
    let now: string;
    try {
      const r = await pgha(['failover', '-i', inventory, '--candidate', candidate, '--yes'], { timeoutMs: 5 * 60_000 });
      t.diagnostic(`exit ${r.code}\n${r.stdout}${r.stderr}`);
      if (r.code === 0) {
        now = /failover done: (\S+) leads/.exec(r.stdout)?.[1] ?? '';
        // Patroni's own failover may elect another member first: pgha says so.
        if (now !== candidate) assert.match(r.stdout, new RegExp(`Patroni elected ${now}, not ${candidate}`));
      } else {
        // Patroni's own failover completed before pgha looked: it refuses and names the new leader.
        assert.equal(r.code, 2, r.stdout + r.stderr);
        now = /the cluster has a healthy leader, (\S+):/.exec(r.stderr)?.[1] ?? '';
      }
      assert.ok(DB.includes(now) && now !== old, `new leader "${now}"`);
      assert.equal(await leader(), now);
    } finally {
      await lab.start(old);
    }
    await until(`${old} streaming again`, 300_000, async () => (await status()).members.find((m) => m.name === old)?.state === 'streaming');
    await until('the cluster to verify again', 300_000, verified);
  });
});
