// Logging in with the ssh-agent, encrypted keys and through a jump host, against a real sshd on
// loopback (sshd-fixture.ts) and a real ssh-agent (started here, ended by its PID).
import assert from 'node:assert/strict';
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { HostError } from '../../../src/errors.js';
import { authMethods, publicBlobOf } from '../../../src/ssh/auth.js';
import { SshConnection } from '../../../src/ssh/index.js';
import { Sshd, SUDO_USER, startSshd } from './sshd-fixture.js';

let sshd: Sshd;
let agent: ChildProcess;
let agentSocket: string;
const PASSPHRASE = 'correct horse battery';

/** A new key pair with a passphrase, authorized for the sudo user. */
function encryptedKey(name: string): string {
  const path = join(sshd.dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', PASSPHRASE, '-C', name, '-f', path]);
  appendFileSync(join(sshd.dir, 'authorized', SUDO_USER), readFileSync(`${path}.pub`));
  return path;
}

/** ssh-add with the passphrase given through SSH_ASKPASS (no terminal). */
function agentAdd(key: string, passphrase = ''): void {
  const askpass = join(sshd.dir, 'askpass.sh');
  writeFileSync(askpass, '#!/bin/sh\nprintf "%s\\n" "$TEST_PASSPHRASE"\n', { mode: 0o700 });
  execFileSync('ssh-add', ['-q', key], {
    env: { ...process.env, SSH_AUTH_SOCK: agentSocket, SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: 'force', DISPLAY: ':0', TEST_PASSPHRASE: passphrase },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
}

before(async () => {
  sshd = await startSshd();
  agentSocket = join(sshd.dir, 'agent.sock');
  agent = spawn('ssh-agent', ['-D', '-a', agentSocket], { stdio: 'ignore' });
  for (let i = 0; i < 50 && !existsSync(agentSocket); i++) await new Promise((r) => setTimeout(r, 100));
  assert.ok(existsSync(agentSocket), 'ssh-agent did not start');
});
after(async () => {
  if (agent?.pid && agent.exitCode === null) process.kill(agent.pid, 'SIGTERM');
  await sshd?.stop();
});

/** A target with no key file named: only the agent and these default files. */
const agentTarget = (overrides = {}) => sshd.target({ privateKeyPath: '', defaultKeyPaths: [], agentSocket, ...overrides });

describe('ssh-agent', () => {
  test('a key held only in the agent logs in when no key file is named', async () => {
    agentAdd(sshd.userKey);
    const methods = await authMethods(agentTarget());
    assert.deepEqual(methods.map((m) => m.kind), ['agent']);
    const c = await SshConnection.connect(agentTarget());
    assert.equal((await c.run(['id', '-un'], { sudo: false })).stdout.trim(), SUDO_USER);
    await c.close();
  });

  test('no agent and no key file: a clear error naming the three ways to give a key', async () => {
    await assert.rejects(SshConnection.connect(agentTarget({ agentSocket: undefined })), (err: Error) => {
      assert.ok(err instanceof HostError);
      assert.match(err.message, /^db-test: no SSH key to log in with: set ssh\.private_key .*SSH_AUTH_SOCK is not set/);
      return true;
    });
  });

  test('an agent whose keys the host refuses: the failure says what was tried', async () => {
    const socket = join(sshd.dir, 'agent2.sock');
    const other = spawn('ssh-agent', ['-D', '-a', socket], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 50 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 100));
      execFileSync('ssh-add', ['-q', sshd.otherKey], { env: { ...process.env, SSH_AUTH_SOCK: socket }, stdio: 'ignore' });
      await assert.rejects(SshConnection.connect(agentTarget({ agentSocket: socket })), (err: Error) => {
        assert.match(err.message, /authentication failed for user pgha-test with the ssh-agent's keys/);
        return true;
      });
    } finally {
      process.kill(other.pid!, 'SIGTERM');
    }
  });
});

describe('a passphrase-protected key', () => {
  test('the public half is read from the key itself, without the passphrase', () => {
    const key = encryptedKey('enc_pub');
    const pub = Buffer.from(readFileSync(`${key}.pub`, 'utf8').split(' ')[1], 'base64');
    assert.ok(publicBlobOf(key, readFileSync(key, 'utf8'))!.equals(pub));
  });

  test('decrypted with the passphrase the source gives, asked once for parallel connections', async () => {
    const key = encryptedKey('enc_ok');
    let asked = 0;
    const passphrase = async () => {
      asked++;
      return PASSPHRASE;
    };
    // The CLI memoizes per key file; the transport asks only when it has to decrypt.
    const once = new Map<string, Promise<string | undefined>>();
    const memo = (p: string, retry: string | undefined) => {
      if (!once.has(p) || retry) once.set(p, passphrase());
      return once.get(p)!;
    };
    const conns = await Promise.all([1, 2].map(() => SshConnection.connect(sshd.target({ privateKeyPath: key }), { passphrase: memo })));
    assert.equal(asked, 1);
    assert.equal((await conns[0].run('echo ok', { sudo: false })).stdout, 'ok\n');
    await Promise.all(conns.map((c) => c.close()));
  });

  test('without a passphrase (no terminal, no PGHA_SSH_PASSPHRASE) the error says how to give one', async () => {
    const key = encryptedKey('enc_none');
    await assert.rejects(SshConnection.connect(sshd.target({ privateKeyPath: key, agentSocket: undefined })), (err: Error) => {
      assert.ok(err instanceof HostError);
      assert.equal(
        err.message,
        `db-test: the private key ${key} is encrypted and no passphrase was given: load it into ssh-agent (ssh-add ${key}), ` +
          'set PGHA_SSH_PASSPHRASE, or run pgha on a terminal to be asked for it',
      );
      return true;
    });
  });

  test('a wrong passphrase is asked again, then refused after 3 tries, never shown', async () => {
    const key = encryptedKey('enc_wrong');
    const retries: (string | undefined)[] = [];
    await assert.rejects(
      SshConnection.connect(sshd.target({ privateKeyPath: key }), {
        passphrase: async (_p, retry) => {
          retries.push(retry);
          return 'not-the-passphrase';
        },
      }),
      (err: Error) => {
        assert.equal(err.message, `db-test: wrong passphrase for ${key}: giving up after 3 tries`);
        assert.doesNotMatch(err.message, /not-the-passphrase/);
        return true;
      },
    );
    assert.deepEqual(retries, [undefined, `wrong passphrase for ${key}`, `wrong passphrase for ${key}`]);
  });

  test('held by the agent, it logs in without asking for the passphrase', async () => {
    const key = encryptedKey('enc_agent');
    agentAdd(key, PASSPHRASE);
    const c = await SshConnection.connect(sshd.target({ privateKeyPath: key, agentSocket }), {
      passphrase: async () => assert.fail('the passphrase was asked although the agent holds the key'),
    });
    await c.close();
  });
});

describe('jump hosts', () => {
  test('a host reached through a jump host (the sshd itself), each host key checked', async () => {
    const knownHostsPath = join(sshd.dir, 'kh-jump');
    const target = sshd.target({ knownHostsPath, hostKeyPolicy: 'strict', jump: [{ user: SUDO_USER, address: '127.0.0.1', port: sshd.port }] });
    // Strict and an empty known_hosts: the jump host is refused first, and said to be the jump host.
    await assert.rejects(SshConnection.connect(target), (err: Error) => {
      assert.match(err.message, new RegExp(`^db-test: jump host pgha-test@127\\.0\\.0\\.1:${sshd.port}: the host key of 127\\.0\\.0\\.1:${sshd.port} is not in`));
      return true;
    });
    const c = await SshConnection.connect(target, { acceptNewHostKeys: true });
    // The session on the target comes through the jump host: sshd sees it from loopback, over a forwarded channel.
    assert.equal((await c.run('echo "$SSH_CONNECTION"', { sudo: false })).stdout.split(' ')[0], '127.0.0.1');
    await c.close();
    const again = await SshConnection.connect(target);
    await again.close();
  });

  test('a jump host that cannot reach the target says so', async () => {
    const target = sshd.target({ port: 1, jump: [{ user: SUDO_USER, address: '127.0.0.1', port: sshd.port }] });
    await assert.rejects(SshConnection.connect(target), (err: Error) => {
      assert.match(err.message, /^db-test: through pgha-test@127\.0\.0\.1:\d+: the jump host cannot open a connection to 127\.0\.0\.1:1: /);
      return true;
    });
  });
});
