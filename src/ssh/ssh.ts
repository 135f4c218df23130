// The SSH connector: one node-ssh connection per host, reused for every command.
// Host keys are checked against known_hosts in ssh2's hostVerifier (without one, ssh2
// would accept any key), output is collected as bytes and never trimmed, and every
// command has a time limit after which its channel is killed. Login uses the agent and key
// files (auth.ts); a host behind jump hosts is reached through a channel each hop opens to the
// next (ssh's ProxyJump), every hop's host key checked like the host's own.
import { NodeSSH } from 'node-ssh';
import { HostError, PghaError } from '../errors.js';
import { authHandler, authMethods, describeMethods, type AuthMethod, type PassphraseSource } from './auth.js';
import {
  appendKnownHost,
  fingerprint,
  hostLookupName,
  keyTypeOf,
  preferredHostKeyAlgorithms,
  readKnownHosts,
  verifyHostKey,
} from './known-hosts.js';
import { CommandTimeout, RawResult, ShellConnection, ShellConnectionOptions } from './connection.js';
import type { ProcessPipe } from './kept-process.js';
import { KeptPsql } from './kept-psql.js';
import { RootShell, rootShellCommand } from './root-shell.js';
import type { HostTarget, JumpHop } from './target.js';

export interface ConnectOptions extends ShellConnectionOptions {
  /** The --accept-new-host-keys flag: record unknown host keys whatever the target's policy. */
  acceptNewHostKeys?: boolean;
  /** Passphrases of encrypted key files (asked once per file by the CLI). */
  passphrase?: PassphraseSource;
}

/**
 * Commands at once on one connection (each is a channel). sshd refuses channels beyond its
 * MaxSessions (10 by default: "Channel open failure"); verify and status ask many questions of one
 * host at a time, so the rest wait for a free channel. sshd frees a session a moment after the
 * command's end, so a channel it still refuses is asked for again (nothing ran on it) for a while.
 */
export const MAX_CHANNELS = 8;
const CHANNEL_RETRY_MS = 15_000;

/** sshd refused to open a channel: the command never started. */
class ChannelRefused extends Error {}

// Dead peers are noticed within about a minute instead of at the next command's timeout.
const KEEPALIVE_MS = 15_000;
const KEEPALIVE_COUNT = 4;

/** `user@address:port`, as ProxyJump writes it (IPv6 in brackets). */
export function hopText(h: JumpHop): string {
  return `${h.user}@${h.address.includes(':') ? `[${h.address}]` : h.address}:${h.port}`;
}

export class SshConnection extends ShellConnection {
  private lost: string | undefined;
  private open = 0;
  private readonly waiting: (() => void)[] = [];

  private constructor(
    target: HostTarget,
    private readonly ssh: NodeSSH,
    opts: ConnectOptions,
    /** The jump host connections this one runs through (closed with it). */
    private readonly hops: NodeSSH[],
    /** The host keys verified on the way, jump hosts first: a kept connection checks them again before each use. */
    readonly verifiedKeys: VerifiedKey[],
  ) {
    super(target, opts);
    // Without a listener, an error on an idle connection (ECONNRESET) crashes the process.
    ssh.connection?.on('error', (err: Error) => {
      this.lost = err.message;
    });
    ssh.connection?.on('close', () => {
      this.lost ??= 'connection closed';
    });
    for (const h of hops) h.connection?.on('error', () => {});
  }

  /** Connects (through the jump hosts, if any) and authenticates, or throws a HostError that says why in the operator's terms. */
  static async connect(target: HostTarget, opts: ConnectOptions = {}): Promise<SshConnection> {
    const methods = await authMethods(target, opts.passphrase);
    const hops: NodeSSH[] = [];
    const keys: VerifiedKey[] = [];
    try {
      let via: NodeSSH | undefined;
      for (const hop of target.jump ?? []) {
        const hopTarget: HostTarget = { ...target, address: hop.address, port: hop.port, user: hop.user };
        via = await handshake(hopTarget, methods, opts, via, `jump host ${hopText(hop)}: `, keys);
        hops.push(via);
      }
      const ssh = await handshake(target, methods, opts, via, via ? `through ${hopText(target.jump!.at(-1)!)}: ` : '', keys);
      return new SshConnection(target, ssh, opts, hops, keys);
    } catch (err) {
      for (const h of hops.reverse()) h.dispose();
      throw err;
    }
  }

  protected async exec(text: string, stdin: string | undefined, timeoutMs: number): Promise<RawResult> {
    if (this.open >= MAX_CHANNELS) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.open++;
    try {
      const deadline = Date.now() + CHANNEL_RETRY_MS;
      for (let attempt = 1; ; attempt++) {
        try {
          return await this.execOnChannel(text, stdin, timeoutMs);
        } catch (e) {
          if (!(e instanceof ChannelRefused)) throw e;
          if (Date.now() > deadline) throw new HostError(this.target.name, `the SSH connection failed: ${e.message} (sshd refused a channel for ${CHANNEL_RETRY_MS / 1000} s)`);
          await new Promise((r) => setTimeout(r, Math.min(50 * attempt, 500)));
        }
      }
    } finally {
      this.open--;
      this.waiting.shift()?.();
    }
  }

  private async execOnChannel(text: string, stdin: string | undefined, timeoutMs: number): Promise<RawResult> {
    if (!this.ssh.isConnected()) throw new HostError(this.target.name, `the SSH connection was lost (${this.lost ?? 'closed'})`);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let channel: { signal(name: string): void; close(): void } | undefined;
    let timer: NodeJS.Timeout | undefined;
    const done = this.ssh.execCommand(text, {
      stdin,
      noTrim: true,
      onChannel: (c) => (channel = c),
      // Bytes are decoded once at the end: a UTF-8 character may be split across chunks.
      onStdout: (b) => out.push(b),
      onStderr: (b) => err.push(b),
    });
    const expired = new Promise<never>((_, reject) => {
      if (timeoutMs > 0) {
        timer = setTimeout(() => {
          try {
            channel?.signal('TERM'); // sudo passes TERM on to the command
            channel?.close();
          } catch {
            // the channel is gone already
          }
          reject(new CommandTimeout());
        }, timeoutMs);
      }
    });
    done.catch(() => {}); // after a timeout nobody awaits it
    try {
      const r = await Promise.race([done, expired]);
      // No exit status and no signal: the channel closed under the command (the connection
      // dropped, the host's sshd ended). What the command did on the host is unknown.
      if (r.code === null && !r.signal) {
        await new Promise((res) => setTimeout(res, 100)); // let the connection's own close/error arrive
        throw new HostError(this.target.name, `the SSH connection was lost while a command ran (${this.lost ?? 'the channel closed without an exit status'}): its outcome on the host is unknown; run pgha apply again`);
      }
      return { code: r.code, signal: r.signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
    } catch (e) {
      if (e instanceof CommandTimeout || e instanceof HostError) throw e;
      if (!this.lost && /Channel open failure/.test((e as Error).message)) throw new ChannelRefused((e as Error).message);
      throw new HostError(this.target.name, `the SSH connection failed: ${this.lost ?? (e as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The connection is still up (as far as this end knows). */
  get alive(): boolean {
    return this.lost === undefined && this.ssh.isConnected();
  }

  /**
   * A round trip to the host's sshd that starts no process there: a global request it must answer
   * (cancelling a port forward this connection never asked for; the "failure" reply is the answer).
   * False when the connection is lost or no answer comes within timeoutMs.
   */
  ping(timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const client = this.ssh.connection;
      if (!client || !this.alive) return resolve(false);
      const timer = setTimeout(() => resolve(false), timeoutMs);
      try {
        client.unforwardIn('127.0.0.1', 1, () => {
          clearTimeout(timer);
          resolve(true);
        });
      } catch {
        clearTimeout(timer);
        resolve(false);
      }
    });
  }

  /** Runs shell text as it is (no sudo, no echo): what a connection keeper (keeper.ts) runs for its client. */
  execText(text: string, stdin: string | undefined, timeoutMs: number): Promise<RawResult> {
    return this.exec(text, stdin, timeoutMs);
  }

  /** A channel of its own running `text` (already wrapped), to stay open, as a process pipe; undefined when the host refuses it. */
  private async openPipe(text: string): Promise<ProcessPipe | undefined> {
    const client = this.ssh.connection;
    if (!client || !this.alive) return undefined;
    const channel = await new Promise<import('ssh2').ClientChannel | undefined>((resolve) => {
      try {
        client.exec(text, (err, ch) => resolve(err ? undefined : ch));
      } catch {
        resolve(undefined);
      }
    });
    if (!channel) return undefined;
    channel.on('error', () => {});
    return {
      write: (t) => channel.write(t),
      onStdout: (l) => channel.on('data', l),
      onStderr: (l) => channel.stderr.on('data', l),
      onClose: (l) => channel.on('close', l),
      close: () => channel.close(),
    };
  }

  /** A stream to host:port opened by the host's sshd (ssh -L's way): that address as the host itself reaches it. */
  async forward(host: string, port: number): Promise<import('node:stream').Duplex> {
    if (!this.alive) throw new PghaError(`the SSH connection was lost (${this.lost ?? 'closed'})`);
    try {
      return await this.ssh.forwardOut('127.0.0.1', 0, host, port);
    } catch (err) {
      // SSH's reason code 1: sshd forwards nothing for this login (AllowTcpForwarding no), whatever words it sends with it.
      if ((err as { reason?: unknown }).reason === 1) throw new PghaError(`the host's sshd refused to forward (administratively prohibited: AllowTcpForwarding)`);
      throw err;
    }
  }

  /** A kept psql (kept-psql.ts) started by `text` (already wrapped in sudo); undefined when no channel opens. */
  async openPsql(text: string): Promise<KeptPsql | undefined> {
    const pipe = await this.openPipe(text);
    return pipe && new KeptPsql(pipe);
  }

  /**
   * A long-lived root shell on a channel of its own (root-shell.ts), behind sudo unless the login
   * is root; undefined when the host refuses it (sudo asks for a password, no channel, no bash).
   */
  async openRootShell(): Promise<RootShell | undefined> {
    const { argv, ready } = rootShellCommand();
    const pipe = await this.openPipe(this.wrap(argv, { sudo: true }, 0).text);
    return pipe && RootShell.start(pipe, ready);
  }

  async close(): Promise<void> {
    this.ssh.dispose();
    for (const h of [...this.hops].reverse()) h.dispose();
  }
}

/** A channel from the jump host `via` to the target's SSH port (the socket the target's handshake runs over). */
async function forwardFrom(via: NodeSSH, target: HostTarget, prefix: string) {
  try {
    return await via.forwardOut('127.0.0.1', 0, target.address, target.port);
  } catch (err) {
    throw new HostError(target.name, `${prefix}the jump host cannot open a connection to ${target.address}:${target.port}: ${(err as Error).message}`);
  }
}

/** A host key as it was verified against known_hosts for `address:port`. */
export interface VerifiedKey {
  address: string;
  port: number;
  key: Buffer;
}

/** One SSH handshake (directly, or over a channel of the jump host `via`), host key verified (and added to `verified`), logged in with `methods`. */
async function handshake(target: HostTarget, methods: AuthMethod[], opts: ConnectOptions, via: NodeSSH | undefined, prefix: string, verified: VerifiedKey[]): Promise<NodeSSH> {
  const where = `${target.address}:${target.port}`;
  let entries;
  try {
    entries = readKnownHosts(target.knownHostsPath);
  } catch (err) {
    // e.g. a directory (EISDIR): validate reports that at the inventory's ssh.known_hosts too.
    throw new HostError(target.name, `cannot read the known_hosts file ${target.knownHostsPath}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
  const acceptNew = opts.acceptNewHostKeys === true || target.hostKeyPolicy === 'accept-new';
  let refusal: string | undefined;
  const hostVerifier = (key: Buffer): boolean => {
    const verdict = verifyHostKey(entries, target.address, target.port, key);
    const fp = `${keyTypeOf(key)} key ${fingerprint(key)}`;
    switch (verdict.status) {
      case 'match':
        verified.push({ address: target.address, port: target.port, key });
        return true;
      case 'unknown':
        if (acceptNew) {
          appendKnownHost(target.knownHostsPath, target.address, target.port, key);
          verified.push({ address: target.address, port: target.port, key });
          return true;
        }
        refusal =
          `the host key of ${where} is not in ${target.knownHostsPath}: it offered the ${fp}. ` +
          `Check that fingerprint on the host (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), then run again with ` +
          `--accept-new-host-keys (or set host_key_policy: accept-new) to record it.`;
        return false;
      case 'changed':
        refusal = [
          `WARNING: THE HOST KEY OF ${where} HAS CHANGED. Refusing to connect: this can be a man-in-the-middle attack,`,
          `or the host was reinstalled. It offered the ${fp}; ${target.knownHostsPath} has:`,
          ...verdict.entries.map((e) => `  line ${e.line}: ${e.keyType} key ${fingerprint(e.key)}`),
          `If the change is expected, remove them (ssh-keygen -R '${hostLookupName(target.address, target.port)}' -f ${target.knownHostsPath}) and connect again.`,
        ].join('\n');
        return false;
      case 'revoked':
        refusal = `the host key of ${where} (${fp}) is marked @revoked in ${target.knownHostsPath} line ${verdict.entry.line}; refusing to connect.`;
        return false;
    }
  };

  const serverHostKey = preferredHostKeyAlgorithms(entries, target.address, target.port);
  const sock = via ? await forwardFrom(via, target, prefix) : undefined;
  const ssh = new NodeSSH();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      ssh.connect({
        ...(sock ? { sock } : { host: target.address, port: target.port }),
        username: target.user,
        authHandler: authHandler(methods, target.user),
        hostVerifier,
        readyTimeout: target.connectTimeoutMs,
        keepaliveInterval: KEEPALIVE_MS,
        keepaliveCountMax: KEEPALIVE_COUNT,
        ...(serverHostKey ? { algorithms: { serverHostKey } } : {}),
      } as Parameters<NodeSSH['connect']>[0]),
      // ssh2's readyTimeout covers TCP and the handshake; this is the backstop that nothing hangs.
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(Object.assign(new Error('timeout'), { level: 'client-timeout' })), target.connectTimeoutMs + 2000);
      }),
    ]);
  } catch (err) {
    ssh.connection?.on('error', () => {}); // late errors of a dead connection
    ssh.dispose();
    sock?.destroy();
    throw new HostError(target.name, prefix + (refusal ?? describeConnectError(err, target, methods)));
  } finally {
    clearTimeout(timer);
  }
  // No Nagle: a command's messages (closing one channel, opening the next, several at once) go
  // out back to back, and with Nagle each waited for the host's delayed ACK, about 40 ms: a
  // command's round trip took ~45 ms instead of ~3.
  ssh.connection?.setNoDelay(true);
  return ssh;
}

export function describeConnectError(err: unknown, target: Pick<HostTarget, 'address' | 'port' | 'user' | 'connectTimeoutMs'>, methods: AuthMethod[] = []): string {
  const e = err as NodeJS.ErrnoException & { level?: string };
  const where = `${target.address}:${target.port}`;
  switch (e.code) {
    case 'ECONNREFUSED':
      return `cannot connect to ${where}: connection refused (is sshd running and listening on port ${target.port}?)`;
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `cannot connect to ${where}: no route to host (${e.code})`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `cannot connect to ${where}: the address does not resolve (${e.code})`;
    case 'ECONNRESET':
      return `cannot connect to ${where}: the connection was reset during the handshake (ECONNRESET)`;
  }
  if (e.level === 'client-timeout' || e.code === 'ETIMEDOUT') {
    return `cannot connect to ${where}: timed out after ${target.connectTimeoutMs / 1000}s (host down, firewalled or wrong address?)`;
  }
  if (e.level === 'client-authentication') {
    const tried = methods.length ? describeMethods(methods) : 'its keys';
    return (
      `authentication failed for user ${target.user} with ${tried} ` +
      `(is the public key in ~${target.user}/.ssh/authorized_keys on the host?)`
    );
  }
  return `cannot connect to ${where}: ${e.message}`;
}

/** Failures of connectAll, one HostError per host, all reported together. */
export class ConnectAllError extends PghaError {
  constructor(readonly failures: HostError[], total: number) {
    super(
      `could not connect to ${failures.length} of ${total} host(s):`,
      undefined,
      failures.map((f) => `  ${f.message.replace(/\n/g, '\n    ')}`),
    );
  }
}

/** Connects to every target in parallel. All or nothing: on any failure the others are
 * closed and a ConnectAllError lists every failed host. */
export async function connectAll(targets: HostTarget[], opts: ConnectOptions = {}): Promise<Map<string, SshConnection>> {
  const results = await Promise.allSettled(targets.map((t) => SshConnection.connect(t, opts)));
  const conns = new Map<string, SshConnection>();
  const failures: HostError[] = [];
  results.forEach((r, i) => {
    if (r.status === 'fulfilled') conns.set(targets[i].name, r.value);
    else failures.push(r.reason instanceof HostError ? r.reason : new HostError(targets[i].name, String(r.reason)));
  });
  if (failures.length > 0) {
    await Promise.all([...conns.values()].map((c) => c.close()));
    throw new ConnectAllError(failures, targets.length);
  }
  return conns;
}
