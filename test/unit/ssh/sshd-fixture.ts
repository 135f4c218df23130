// A real sshd on loopback for the transport and engine tests: its own host key, config and
// port, started as a child process and killed by its PID. Two test users are set up
// idempotently: pgha-test (passwordless sudo) and pgha-nopw (sudo wants a password).
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HostTarget } from '../../../src/ssh/index.js';

export const SUDO_USER = 'pgha-test';
export const NOPW_USER = 'pgha-nopw';

export interface Sshd {
  dir: string;
  port: number;
  hostKeyPub: string; // path of the host's public key
  userKey: string; // private key accepted for both test users
  otherKey: string; // a private key no user accepts
  target(overrides?: Partial<HostTarget>): HostTarget;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function ensureUser(name: string, sudoers: string): void {
  try {
    sh('id', ['-u', name]);
  } catch {
    sh('useradd', ['--create-home', '--shell', '/bin/bash', name]);
  }
  // '*' = no password, but not "locked" (sshd refuses locked accounts even for keys).
  sh('usermod', ['-p', '*', name]);
  writeFileSync(`/etc/sudoers.d/${name}`, `${name} ${sudoers}\n`, { mode: 0o440 });
}

function keygen(path: string): void {
  sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'pgha-test', '-f', path]);
}

async function waitForBanner(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = createConnection({ host: '127.0.0.1', port });
      s.once('data', (d) => {
        s.destroy();
        resolve(d.toString().startsWith('SSH-'));
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error('sshd did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function startSshd(): Promise<Sshd> {
  const dir = mkdtempSync(join(tmpdir(), 'pgha-sshd-'));
  chmodSync(dir, 0o755); // sshd reads authorized keys as the connecting user
  ensureUser(SUDO_USER, 'ALL=(ALL:ALL) NOPASSWD: ALL');
  ensureUser(NOPW_USER, 'ALL=(ALL:ALL) ALL');
  keygen(join(dir, 'host_key'));
  keygen(join(dir, 'user_key'));
  keygen(join(dir, 'other_key'));
  mkdirSync(join(dir, 'authorized'), { mode: 0o755 });
  const pub = readFileSync(join(dir, 'user_key.pub'), 'utf8');
  for (const u of [SUDO_USER, NOPW_USER]) writeFileSync(join(dir, 'authorized', u), pub, { mode: 0o644 });
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const config = join(dir, 'sshd_config');
  writeFileSync(
    config,
    [
      `HostKey ${join(dir, 'host_key')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized')}/%u`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      'StrictModes no',
      'UsePAM no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin no',
      `AllowUsers ${SUDO_USER} ${NOPW_USER}`,
      'LogLevel ERROR',
      // The user without passwordless sudo also gets no port forwarding (a host that forbids it).
      `Match User ${NOPW_USER}`,
      '  AllowTcpForwarding no',
      '',
    ].join('\n'),
  );
  const port = await freePort();
  const child: ChildProcess = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', config, '-p', String(port), '-o', 'ListenAddress=127.0.0.1'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr!.on('data', (b) => (log += b));
  try {
    await waitForBanner(port, 10_000);
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${(err as Error).message}: ${log}`);
  }
  return {
    dir,
    port,
    hostKeyPub: join(dir, 'host_key.pub'),
    userKey: join(dir, 'user_key'),
    otherKey: join(dir, 'other_key'),
    target: (overrides = {}) => ({
      name: 'db-test',
      address: '127.0.0.1',
      port,
      user: SUDO_USER,
      privateKeyPath: join(dir, 'user_key'),
      sudo: true,
      knownHostsPath: join(dir, 'known_hosts'),
      hostKeyPolicy: 'accept-new',
      connectTimeoutMs: 5000,
      commandTimeoutMs: 20_000,
      ...overrides,
    }),
    stop: async () => {
      if (child.exitCode === null && child.pid) {
        const exited = new Promise((r) => child.once('exit', r));
        process.kill(child.pid, 'SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** `SHA256:...` of a public key file, as ssh-keygen prints it. */
export function keygenFingerprint(pubPath: string): string {
  return sh('ssh-keygen', ['-l', '-E', 'sha256', '-f', pubPath]).split(' ')[1];
}
