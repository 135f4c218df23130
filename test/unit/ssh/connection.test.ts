// The SSH transport against a real sshd on loopback (see sshd-fixture.ts).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { HostError } from '../../../src/errors.js';
import { CommandError, ConnectAllError, Masker, SshConnection, connectAll } from '../../../src/ssh/index.js';
import { NOPW_USER, Sshd, SUDO_USER, freePort, keygenFingerprint, startSshd } from './sshd-fixture.js';

let sshd: Sshd;
let conn: SshConnection;

before(async () => {
  sshd = await startSshd();
  conn = await SshConnection.connect(sshd.target(), { masker: new Masker(['s3cret-pass']) });
});
after(async () => {
  await conn?.close();
  await sshd?.stop();
});

describe('host keys', () => {
  test('an unknown host is refused with its fingerprint and the flag to accept it', async () => {
    const knownHostsPath = join(sshd.dir, 'kh-strict');
    await assert.rejects(SshConnection.connect(sshd.target({ hostKeyPolicy: 'strict', knownHostsPath })), (err: Error) => {
      assert.ok(err instanceof HostError);
      assert.match(err.message, /db-test: /);
      assert.ok(err.message.includes(keygenFingerprint(sshd.hostKeyPub)), err.message);
      assert.match(err.message, /--accept-new-host-keys/);
      return true;
    });
  });

  test('accept-new records the key; strict then connects', async () => {
    const knownHostsPath = join(sshd.dir, 'kh-new');
    const c1 = await SshConnection.connect(sshd.target({ hostKeyPolicy: 'strict', knownHostsPath }), { acceptNewHostKeys: true });
    await c1.close();
    const line = readFileSync(knownHostsPath, 'utf8');
    const pub = readFileSync(sshd.hostKeyPub, 'utf8').split(' ').slice(0, 2).join(' ');
    assert.equal(line, `[127.0.0.1]:${sshd.port} ${pub}\n`);
    const c2 = await SshConnection.connect(sshd.target({ hostKeyPolicy: 'strict', knownHostsPath }));
    await c2.close();
  });

  test('a hashed entry (ssh-keygen -H) is matched', async () => {
    const knownHostsPath = join(sshd.dir, 'kh-hashed');
    const pub = readFileSync(sshd.hostKeyPub, 'utf8').split(' ').slice(0, 2).join(' ');
    writeFileSync(knownHostsPath, `[127.0.0.1]:${sshd.port} ${pub}\n`);
    execFileSync('ssh-keygen', ['-q', '-H', '-f', knownHostsPath], { stdio: 'ignore' });
    assert.match(readFileSync(knownHostsPath, 'utf8'), /^\|1\|/);
    const c = await SshConnection.connect(sshd.target({ hostKeyPolicy: 'strict', knownHostsPath }));
    await c.close();
  });

  test('a changed key is refused loudly, even with accept-new', async () => {
    const knownHostsPath = join(sshd.dir, 'kh-changed');
    const other = readFileSync(`${sshd.otherKey}.pub`, 'utf8').split(' ').slice(0, 2).join(' ');
    writeFileSync(knownHostsPath, `# pgha test\n@cert-authority *.example ${other}\n[127.0.0.1]:${sshd.port} ${other}\n`);
    await assert.rejects(
      SshConnection.connect(sshd.target({ hostKeyPolicy: 'accept-new', knownHostsPath }), { acceptNewHostKeys: true }),
      (err: Error) => {
        assert.match(err.message, /HAS CHANGED/);
        assert.match(err.message, /line 3/);
        assert.ok(err.message.includes(keygenFingerprint(sshd.hostKeyPub)));
        assert.ok(err.message.includes(keygenFingerprint(`${sshd.otherKey}.pub`)));
        assert.ok(err.message.includes(knownHostsPath));
        return true;
      },
    );
  });
});

describe('connect failures name the host and the reason', () => {
  test('wrong user key', async () => {
    await assert.rejects(SshConnection.connect(sshd.target({ privateKeyPath: sshd.otherKey })), (err: Error) => {
      assert.match(err.message, /db-test: authentication failed for user pgha-test with the key .*other_key/);
      return true;
    });
  });

  test('connection refused', async () => {
    const port = await freePort();
    await assert.rejects(SshConnection.connect(sshd.target({ port })), /db-test: cannot connect to 127\.0\.0\.1:\d+: connection refused/);
  });

  test('a silent server times out', async () => {
    const sockets: Socket[] = [];
    const srv = createServer((s) => sockets.push(s));
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as { port: number }).port;
    const t0 = Date.now();
    try {
      await assert.rejects(SshConnection.connect(sshd.target({ port, connectTimeoutMs: 800 })), /db-test: cannot connect to .*timed out after 0\.8s/);
      assert.ok(Date.now() - t0 < 5000);
    } finally {
      sockets.forEach((s) => s.destroy());
      srv.close();
    }
  });

  test('connectAll reports every failed host together', async () => {
    const refused = await freePort();
    await assert.rejects(
      connectAll([sshd.target({ name: 'db1' }), sshd.target({ name: 'db2', port: refused }), sshd.target({ name: 'db3', privateKeyPath: sshd.otherKey })]),
      (err: Error) => {
        assert.ok(err instanceof ConnectAllError);
        assert.match(err.message, /2 of 3/);
        assert.deepEqual(
          err.failures.map((f) => f.host),
          ['db2', 'db3'],
        );
        return true;
      },
    );
  });
});

describe('run', () => {
  test('more commands at once than sshd allows channels (MaxSessions 10) wait for a free one, none refused', async () => {
    const n = 25;
    const rs = await Promise.all(Array.from({ length: n }, (_, i) => conn.run(`sleep 0.3; echo ${i}`)));
    assert.deepEqual(rs.map((r) => r.stdout.trim()), Array.from({ length: n }, (_, i) => String(i)));
  });

  test('exit codes, check, untrimmed output, stdin, UTF-8', async () => {
    const r = await conn.run('printf "  two leading\\n\\nand trailing  \\n\\n"; printf "err \\n" >&2');
    assert.deepEqual(r, { code: 0, stdout: '  two leading\n\nand trailing  \n\n', stderr: 'err \n' });
    const f = await conn.run(['sh', '-c', 'echo oops >&2; exit 3'], { check: false });
    assert.equal(f.code, 3);
    await assert.rejects(conn.run(['sh', '-c', 'echo "bad thing happened" >&2; exit 3']), (err: Error) => {
      assert.ok(err instanceof CommandError);
      assert.match(err.message, /db-test: command failed \(exit 3\): \[sudo\] sh -c/);
      assert.match(err.message, /bad thing happened/);
      return true;
    });
    const big = 'é€😀 '.repeat(20_000);
    assert.equal((await conn.run(['cat'], { stdin: big })).stdout, big);
    // argv words are quoted: nothing is read as shell syntax
    assert.equal((await conn.run(['echo', "it's $HOME; `id`"])).stdout, "it's $HOME; `id`\n");
  });

  test('secrets are masked in errors and in the echo', async () => {
    const echoed: string[] = [];
    const c = await SshConnection.connect(sshd.target(), { masker: new Masker(['s3cret-pass']), onCommand: (_h, cmd) => echoed.push(cmd) });
    try {
      await assert.rejects(c.run(['sh', '-c', 'echo "s3cret-pass" >&2; exit 1', 'x', 's3cret-pass']), (err: Error) => {
        assert.ok(!err.message.includes('s3cret-pass'), err.message);
        assert.match(err.message, /\*{8}/);
        return true;
      });
      assert.ok(echoed.length === 1 && !echoed[0].includes('s3cret') && echoed[0].includes('********'));
    } finally {
      await c.close();
    }
  });

  test('sudo, no sudo, another user', async () => {
    assert.equal((await conn.run(['id', '-u'])).stdout, '0\n');
    assert.equal((await conn.run(['id', '-un'], { sudo: false })).stdout, `${SUDO_USER}\n`);
    assert.equal((await conn.run(['id', '-un'], { user: 'nobody' })).stdout, 'nobody\n');
    assert.equal((await conn.run('id -un; echo "$0"', { user: 'nobody' })).stdout, 'nobody\nsh\n');
  });

  test('runEach: one round trip, each command its own user, exit code, stdout and stderr', async () => {
    const seen: string[] = [];
    const logged: { command: string; code: number }[] = [];
    const c = await SshConnection.connect(sshd.target(), {
      masker: new Masker(['s3cret-pass']),
      onCommand: (_h, cmd) => seen.push(cmd),
      onResult: (_h, command, o) => logged.push({ command, code: o.code }),
    });
    try {
      // Counts round trips: the transport's exec is called once per channel.
      const raw = c as unknown as { exec: (...a: unknown[]) => Promise<unknown> };
      const exec = raw.exec.bind(c);
      let trips = 0;
      raw.exec = (...a) => (trips++, exec(...a));
      const [a, b, d, e, f] = await c.runEach([
        { cmd: ['sh', '-c', 'echo out; printf "err s3cret-pass" >&2; exit 3'], check: false, display: 'first' },
        { cmd: 'id -un; echo "$HOME"', user: 'nobody' },
        { cmd: ['printf', '%s', 'no newline\n\nx'] },
        { cmd: ['false'], display: 'the failing one' },
        { cmd: ['id', '-u'] },
      ]);
      assert.deepEqual(a, { code: 3, stdout: 'out\n', stderr: 'err ********' });
      assert.deepEqual(b, { code: 0, stdout: 'nobody\n/nonexistent\n', stderr: '' });
      assert.deepEqual(d, { code: 0, stdout: 'no newline\n\nx', stderr: '' });
      assert.ok(e instanceof CommandError, String(e));
      assert.equal((e as CommandError).message, 'db-test: command failed (exit 1): the failing one');
      assert.deepEqual(f, { code: 0, stdout: '0\n', stderr: '' });
      assert.deepEqual(seen, ['first', '[as nobody] id -un; echo "$HOME"', "[sudo] printf %s 'no newline\n\nx'", 'the failing one', '[sudo] id -u']);
      assert.deepEqual(logged.map((l) => l.code), [3, 0, 0, 1, 0]);
      assert.equal(trips, 1);
      // Root's shell scripts run in the part's own subshell: their own arguments, none of the batch's variables.
      const [g, h] = await c.runEach([{ cmd: ['sh', '-c', 'echo "$1|$2|${m-unset}${i-}${t-}${c-}"', 'name', 'a b', "c'd"] }, { cmd: 'echo "$#"; exit 4', check: false }]);
      assert.deepEqual(g, { code: 0, stdout: "a b|c'd|unset\n", stderr: '' });
      assert.deepEqual(h, { code: 4, stdout: '0\n', stderr: '' });
      // Each user's group is looked up once a batch; a user the host does not know fails that part only.
      const [n1, unknown, n2] = await c.runEach([{ cmd: ['id', '-gn'], user: 'nobody' }, { cmd: ['true'], user: 'pgha-no-such-user', check: false }, { cmd: ['id', '-un'], user: 'nobody' }]);
      assert.deepEqual([n1, n2], [{ code: 0, stdout: 'nogroup\n', stderr: '' }, { code: 0, stdout: 'nobody\n', stderr: '' }]);
      assert.ok(!(unknown instanceof Error) && unknown.code !== 0 && /unknown user/.test(unknown.stderr), JSON.stringify(unknown));
      // A command over its own limit is killed, and the others still answer.
      const [slow, quick] = await c.runEach([{ cmd: ['sleep', '30'], timeoutMs: 1000, check: false }, { cmd: ['echo', 'after'] }]);
      assert.equal((slow as { code: number }).code, 124);
      assert.deepEqual(quick, { code: 0, stdout: 'after\n', stderr: '' });
      // The whole batch is killed at its time limit, and says so.
      await assert.rejects(c.runEach([{ cmd: ['true'] }, { cmd: ['sleep', '30'] }], { timeoutMs: 500 }), /db-test: commands timed out after 0\.5s and were killed: \[sudo\] true; \[sudo\] sleep 30/);
    } finally {
      await c.close();
    }
  });

  test('sudo that wants a password fails with the fix', async () => {
    const c = await SshConnection.connect(sshd.target({ user: NOPW_USER }));
    try {
      await assert.rejects(c.run(['true']), (err: Error) => {
        assert.match(err.message, /db-test: sudo asks user pgha-nopw for a password/);
        assert.match(err.message, /NOPASSWD/);
        return true;
      });
      // even when the caller reads exit codes itself
      await assert.rejects(c.run(['true'], { check: false }), /password/);
      await assert.rejects(c.runEach([{ cmd: ['true'] }, { cmd: ['true'], check: false }]), /db-test: sudo asks user pgha-nopw for a password/);
    } finally {
      await c.close();
    }
  });

  test('a command that runs out of time is killed and named', async () => {
    const t0 = Date.now();
    await assert.rejects(conn.run(['sleep', '30'], { timeoutMs: 500 }), /db-test: command timed out after 0\.5s and was killed: \[sudo\] sleep 30/);
    assert.ok(Date.now() - t0 < 3000);
    assert.equal((await conn.run(['echo', 'still usable'])).stdout, 'still usable\n');
  });
});

describe('files', () => {
  test('writeFileAtomic + readFile round-trip with owner and mode', async () => {
    const dir = join(sshd.dir, 'files');
    mkdirSync(dir, { mode: 0o700 }); // root only: reading and writing need sudo
    const path = join(dir, 'patroni.yml');
    const content = '\n  scope: main\nkey: "$HOME `x`"\n\n';
    await conn.writeFileAtomic(path, content, { owner: SUDO_USER, group: 'root', mode: 0o640 });
    const st = statSync(path);
    assert.equal(st.mode & 0o7777, 0o640);
    assert.equal(st.gid, 0);
    assert.equal(execFileSync('stat', ['-c', '%U', path], { encoding: 'utf8' }).trim(), SUDO_USER);
    assert.equal(readFileSync(path, 'utf8'), content);
    assert.equal(await conn.readFile(path), content);
    assert.equal(await conn.readFile(join(dir, 'missing')), null);
    // overwrite; no temp file left behind
    await conn.writeFileAtomic(path, 'v2\n', { mode: '0600' });
    assert.equal(await conn.readFile(path), 'v2\n');
    assert.equal(statSync(path).mode & 0o7777, 0o600);
    assert.deepEqual(execFileSync('ls', ['-A', dir], { encoding: 'utf8' }), 'patroni.yml\n');
    // without sudo the root-only directory is unreadable: a clear error, not null
    await assert.rejects(
      (async () => {
        const c = await SshConnection.connect(sshd.target({ sudo: false }));
        try {
          await c.readFile(path);
        } finally {
          await c.close();
        }
      })(),
      /cannot read .*Permission denied/,
    );
  });
});
