// The connection keeper against a real sshd on loopback: a second client gets the connection the
// first one opened, a host key that known_hosts no longer holds is refused again, an encrypted
// key sends the client back to connecting by itself, time limits hold, and the keeper ends once
// nothing is kept. Its socket's directory must be the user's alone.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { HostError } from '../../../src/errors.js';
import { CommandTimedOut } from '../../../src/ssh/connection.js';
import { connectionKey, runKeeper } from '../../../src/ssh/keeper.js';
import { dial, keeperSocketPath, onMessages, SERVED_ENV, type KeeperReply, type ServedStatusRequest } from '../../../src/ssh/keeper-protocol.js';
import { KeeperClient, KeptConnection } from '../../../src/ssh/kept.js';
import { NOPW_USER, Sshd, startSshd } from './sshd-fixture.js';

let sshd: Sshd;
const dir = mkdtempSync(join(tmpdir(), 'pgha-unit-keeper-'));
chmodSync(dir, 0o700);
const socketPath = join(dir, 'keeper.sock');
const stopKeeper = new AbortController();
let keeper: Promise<number>;
// A client never starts a keeper here: the test's own keeper answers (a start would fail loudly).
const place = { socketPath, start: ['/bin/false'] };

before(async () => {
  sshd = await startSshd();
  keeper = runKeeper(socketPath, { signal: stopKeeper.signal });
  for (let i = 0; i < 100 && !existsSync(socketPath); i++) await new Promise((r) => setTimeout(r, 20));
});
after(async () => {
  stopKeeper.abort();
  assert.equal(await keeper, 0);
  await sshd.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** A connection through the keeper (a fresh client each time, as a new pgha process would have). */
async function kept(target = sshd.target({ persistMs: 60_000 })): Promise<KeptConnection> {
  const client = await KeeperClient.open(place);
  assert.ok(client, 'the keeper answers');
  const c = await client.connect(target, {});
  assert.ok(c instanceof KeptConnection, `a kept connection, not ${String(c)}`);
  return c;
}

/** The sshd process serving the connection: it forks the sshd child each command runs under. */
async function sessionPid(c: KeptConnection): Promise<string> {
  return (await c.run(['sh', '-c', 'cut -d " " -f 4 /proc/$PPID/stat'], { sudo: false })).stdout.trim();
}

describe('the connection keeper', () => {
  test('a second client gets the connection the first opened (same sshd session), sudo and stdin work through it', async () => {
    const first = await kept();
    const pid = await sessionPid(first);
    await first.close();
    const second = await kept();
    assert.equal(await sessionPid(second), pid, 'the same SSH connection');
    assert.equal((await second.run(['id', '-un'])).stdout, 'root\n');
    assert.equal((await second.run(['cat'], { sudo: false, stdin: 'line one\nline two' })).stdout, 'line one\nline two');
    const failed = await second.run(['sh', '-c', 'echo out; echo err >&2; exit 3'], { sudo: false, check: false });
    assert.deepEqual(failed, { code: 3, stdout: 'out\n', stderr: 'err\n' });
    await second.close();
  });

  test('a kept connection whose peer stops answering is replaced by a fresh one', async () => {
    const first = await kept();
    // The sshd process that serves this connection's channels.
    const server = Number(await sessionPid(first));
    await first.close();
    // A healthy peer: the probe answers.
    const again = await kept();
    assert.equal(Number(await sessionPid(again)), server, 'the same connection');
    await again.close();
    process.kill(server, 'SIGSTOP');
    try {
      const t0 = Date.now();
      const fresh = await kept();
      assert.ok(Date.now() - t0 >= 1400, 'the probe waited its 1.5 s');
      assert.notEqual(Number(await sessionPid(fresh)), server, 'a new connection');
      await fresh.close();
    } finally {
      process.kill(server, 'SIGCONT');
    }
  });

  test('a command past its time limit is killed and reported as such; the connection still serves', async () => {
    const c = await kept();
    const started = Date.now();
    await assert.rejects(c.run(['sleep', '30'], { sudo: false, timeoutMs: 500 }), (e: unknown) => e instanceof CommandTimedOut && /timed out after 0.5s/.test(e.message));
    assert.ok(Date.now() - started < 5000, `${Date.now() - started} ms`);
    assert.equal((await c.run(['echo', 'alive'], { sudo: false })).stdout, 'alive\n');
    await c.close();
  });

  test("a batch as root runs in the host's kept root shell: the same shell for the next client, answers as on a channel of its own, a timeout gives it up", async () => {
    // The first part says which process its batch runs under: its batch shell's parent is timeout, whose parent that is.
    const batch = [
      { cmd: ['sh', '-c', 'p=$(cut -d " " -f 4 /proc/$PPID/stat); p=$(cut -d " " -f 4 /proc/$p/stat); echo "$p $(tr "\\0\\n" "  " < /proc/$p/cmdline | cut -c 1-10)"'] },
      { cmd: ['sh', '-c', 'printf "out"; echo err >&2; exit 3'], check: false },
      { cmd: ['id', '-un'], user: 'nobody' },
    ];
    const first = await kept();
    const a = await first.runEach(batch);
    await first.close();
    const second = await kept();
    const b = await second.runEach(batch);
    const [shellA, shellB] = [a[0], b[0]].map((r) => ('stdout' in r ? r.stdout : String(r)));
    assert.match(shellA, /^\d+ bash -c d=/, 'the batch ran under the kept root shell');
    assert.equal(shellB, shellA, 'the next client used the same shell');
    assert.deepEqual(b.slice(1), [
      { code: 3, stdout: 'out', stderr: 'err\n' },
      { code: 0, stdout: 'nobody\n', stderr: '' },
    ]);
    const t0 = Date.now();
    await assert.rejects(second.runEach([{ cmd: ['sleep', '30'] }, { cmd: ['true'] }], { timeoutMs: 500 }), (e: unknown) => e instanceof CommandTimedOut && /timed out after 0.5s/.test(e.message));
    assert.ok(Date.now() - t0 < 3000, `${Date.now() - t0} ms`);
    const c = await second.runEach(batch);
    assert.ok('stdout' in c[0] && /^\d+ bash -c d=/.test(c[0].stdout) && c[0].stdout !== shellA, `a new shell after the timeout: ${JSON.stringify(c[0])}`);
    await second.close();
  });

  test('GETs over the kept connection reach the address as the host sees it; a refused one is that URL own error, a login that may not forward says so', async () => {
    const server = createServer((req, res) => res.end(`seen ${req.url}`));
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', () => res()));
    try {
      const port = (server.address() as AddressInfo).port;
      const c = await kept();
      const answers = await c.httpKept([`http://127.0.0.1:${port}/cluster`, 'http://127.0.0.1:1/none'], { timeoutMs: 3000 });
      assert.deepEqual(answers[0], { status: 200, body: 'seen /cluster' });
      assert.ok('error' in answers[1] && /refused|failure/i.test(answers[1].error), JSON.stringify(answers[1]));
      await c.close();
      // A login whose sshd forwards nothing (AllowTcpForwarding no): said in words status acts on.
      const noForward = await kept(sshd.target({ persistMs: 60_000, user: NOPW_USER }));
      const refused = await noForward.httpKept([`http://127.0.0.1:${port}/cluster`], { timeoutMs: 3000 });
      assert.deepEqual(refused, [{ error: "the host's sshd refused to forward (administratively prohibited: AllowTcpForwarding)" }]);
      await noForward.close();
    } finally {
      server.close();
    }
  });

  test('a host key that known_hosts no longer holds: the kept connection is not used, the connect is refused', async () => {
    const knownHosts = join(dir, 'known_hosts_strict');
    const line = (pub: string) => `[127.0.0.1]:${sshd.port} ${readFileSync(pub, 'utf8').split(' ').slice(0, 2).join(' ')}\n`;
    writeFileSync(knownHosts, line(sshd.hostKeyPub));
    const target = sshd.target({ knownHostsPath: knownHosts, hostKeyPolicy: 'strict', persistMs: 60_000 });
    const c = await kept(target);
    assert.equal((await c.run(['true'], { sudo: false })).code, 0);
    await c.close();
    // Another key for the host, as after `ssh-keygen -R` and a new entry (or an attacker's).
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'impostor')]);
    writeFileSync(knownHosts, line(join(dir, 'impostor.pub')));
    const client = (await KeeperClient.open(place))!;
    await assert.rejects(client.connect(target, {}), (e: unknown) => e instanceof HostError && /THE HOST KEY OF 127\.0\.0\.1:\d+ HAS CHANGED/.test(e.message));
    client.release();
  });

  test('an encrypted key with no agent: the client is told to connect by itself (the keeper never gets a passphrase)', async () => {
    const key = join(dir, 'encrypted');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'a passphrase', '-f', key]);
    const client = (await KeeperClient.open(place))!;
    assert.equal(await client.connect(sshd.target({ privateKeyPath: key, agentSocket: undefined, persistMs: 60_000 }), {}), 'direct');
    client.release();
  });

  test('an unreachable host is a HostError in the words of a direct connect', async () => {
    const client = (await KeeperClient.open(place))!;
    await assert.rejects(
      client.connect(sshd.target({ port: 1, persistMs: 60_000 }), {}),
      (e: unknown) => e instanceof HostError && e.message === 'db-test: cannot connect to 127.0.0.1:1: connection refused (is sshd running and listening on port 1?)',
    );
    client.release();
  });

  test('connections unused for persistMs are closed, and a keeper with nothing left ends and removes its socket', async () => {
    const own = join(dir, 'short.sock');
    const short = runKeeper(own, { emptyGraceMs: 300 });
    for (let i = 0; i < 100 && !existsSync(own); i++) await new Promise((r) => setTimeout(r, 20));
    const client = (await KeeperClient.open({ socketPath: own, start: ['/bin/false'] }))!;
    const c = await client.connect(sshd.target({ persistMs: 300 }), {});
    assert.ok(c instanceof KeptConnection);
    const pid = await sessionPid(c);
    // Held by a client, a connection is not idle: it outlives persistMs.
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(await sessionPid(c), pid);
    await c.close();
    const ended = await Promise.race([short, new Promise((r) => setTimeout(() => r('still running'), 5000))]);
    assert.equal(ended, 0);
    assert.equal(existsSync(own), false);
  });
});

describe('a status the keeper is asked to answer (quick-status.ts)', () => {
  const askStatus = async (request: ServedStatusRequest): Promise<KeeperReply> => {
    const socket = await dial(socketPath);
    assert.ok(socket, 'the keeper answers');
    try {
      return await new Promise<KeeperReply>((resolve) => {
        onMessages<KeeperReply>(socket, resolve);
        socket.write(`${JSON.stringify({ op: 'status', id: 9, request })}\n`);
      });
    } finally {
      socket.destroy();
    }
  };
  const own = Object.fromEntries(SERVED_ENV.map((k) => [k, process.env[k]]));
  const base = { inventory: 'inventory.yml', cwd: dir, json: false, color: false, env: own };

  test('another environment (how hosts are reached) is handed back to the client, as is bad input: the CLI says it in its own words', async () => {
    assert.deepEqual(await askStatus({ ...base, env: { ...own, HOME: '/somewhere/else' } }), { id: 9, status: { fallback: "$HOME differs from the keeper's" } });
    assert.deepEqual(await askStatus({ ...base, env: { ...own, SSH_AUTH_SOCK: '/tmp/another-agent' } }), { id: 9, status: { fallback: "$SSH_AUTH_SOCK differs from the keeper's" } });
    const missing = await askStatus(base);
    assert.ok('status' in missing && 'fallback' in missing.status, JSON.stringify(missing));
    assert.match(missing.status.fallback, /^cannot read inventory inventory\.yml: ENOENT/);
    writeFileSync(join(dir, 'bad.yml'), 'cluster: [\n');
    const bad = await askStatus({ ...base, inventory: 'bad.yml' });
    assert.ok('status' in bad && 'fallback' in bad.status && /^bad\.yml: 1 problem/.test(bad.status.fallback), JSON.stringify(bad));
  });
});

describe('a keeper that cannot start', () => {
  test('the command connects by itself, and the next ones do not wait for a keeper again', async () => {
    const place = { socketPath: join(dir, 'never.sock'), start: ['/bin/false'] };
    let started = Date.now();
    assert.equal(await KeeperClient.open(place), undefined);
    assert.ok(Date.now() - started >= 1900, `gave up after ${Date.now() - started} ms`);
    started = Date.now();
    assert.equal(await KeeperClient.open(place), undefined);
    assert.ok(Date.now() - started < 200, `waited ${Date.now() - started} ms again`);
  });
});

describe('the keeper socket', () => {
  test("in a directory only its user may enter; one that others can enter is refused (no keeper)", () => {
    const base = mkdtempSync(join(tmpdir(), 'pgha-unit-keeper-dir-'));
    try {
      const path = keeperSocketPath('1.2.3', { PGHA_RUNTIME_DIR: join(base, 'run') });
      assert.equal(path, join(base, 'run', 'keeper-3-1.2.3.sock'));
      assert.equal(statSync(join(base, 'run')).mode & 0o777, 0o700);
      mkdirSync(join(base, 'open'), { mode: 0o755 });
      chmodSync(join(base, 'open'), 0o755);
      assert.equal(keeperSocketPath('1.2.3', { PGHA_RUNTIME_DIR: join(base, 'open') }), undefined);
      assert.equal(keeperSocketPath('1.2.3', { XDG_RUNTIME_DIR: base }), join(base, 'pgha', 'keeper-3-1.2.3.sock'));
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });

  test('a connection is the same for other timeouts, another for another user, key or known_hosts', () => {
    const t = sshd.target();
    assert.equal(connectionKey({ ...t, connectTimeoutMs: 1, commandTimeoutMs: 2, persistMs: 3 }), connectionKey(t));
    for (const other of [{ user: 'x' }, { privateKeyPath: '/k' }, { knownHostsPath: '/kh' }, { port: 1 }, { hostKeyPolicy: 'strict' as const }]) {
      assert.notEqual(connectionKey({ ...t, ...other }), connectionKey(t), JSON.stringify(other));
    }
  });
});
