// A session: the inventory plus one SSH connection per host, opened in parallel and reused by every
// step of a command. Two ways to open one, built the same way:
//   openSession(inv)    all or nothing (apply, verify, backups): any unreachable host fails the command;
//   connectEach(inv)    tolerant (status, switchover, failover): each host connects on its own with a
//                       short timeout, and one that does not answer is recorded as unreachable.
import { existsSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import { SSH_DEFAULTS, secretValues, type Host, type Inventory, type Role } from '../inventory/index.js';
import { Reporter, type LogSink } from '../engine/reporter.js';
import type { PassphraseSource } from '../ssh/auth.js';
import { HostError, InputError } from '../errors.js';
import { sshConfigFor } from '../ssh/config.js';
import { parseJump } from '../ssh/jump.js';
import type { Connection, HostTarget } from '../ssh/index.js';
import { Masker } from '../ssh/mask.js';
import { KeeperClient } from '../ssh/kept.js';
import type { KeeperPlace } from '../ssh/keeper-protocol.js';
import type { JumpHop } from '../ssh/target.js';

export interface SessionOptions {
  acceptNewHostKeys?: boolean;
  reporter?: Reporter;
  /** The run log (used by the reporter this session makes when none is given). */
  log?: LogSink;
  /** Passphrases of encrypted key files (the CLI: PGHA_SSH_PASSPHRASE or a prompt, once per file). */
  passphrase?: PassphraseSource;
  /** Only these hosts (default: every host of the inventory). */
  hosts?: Host[];
  /** connectEach: connections through this keeper, kept for the hosts' ssh.persist after the command (status). */
  keeper?: KeeperPlace;
}

export interface Session {
  inv: Inventory;
  reporter: Reporter;
  masker: Masker;
  /** The connected hosts. */
  conns: Map<string, Connection>;
  /** Why each host that could not be reached was not (empty for an all-or-nothing session). */
  unreachable: Map<string, string>;
  /** The connection of a host; throws a HostError for a host that is not connected. */
  conn(host: string | Host): Connection;
  /** Connections of the hosts with a role, in inventory order (connected hosts only). */
  withRole(role: Role): Connection[];
  close(): Promise<void>;
}

/** At most this long per connect in a tolerant session: a partitioned or powered-off host must not stall the command. */
const REACH_CONNECT_TIMEOUT_SEC = 3;

/** ssh's own defaults for a key file, tried after the agent when no key is named. */
export function defaultKeyPaths(home = homedir()): string[] {
  return ['id_ed25519', 'id_ecdsa', 'id_rsa'].map((f) => join(home, '.ssh', f));
}

/** A jump spec (inventory or ProxyJump) as hops, each completed from ~/.ssh/config (HostName, User, Port). */
export function jumpHops(spec: string | undefined, configFile: string | null): JumpHop[] {
  if (spec === undefined) return [];
  const parsed = parseJump(spec);
  if (parsed === 'none') return [];
  if (!Array.isArray(parsed)) throw new InputError(`jump host ${JSON.stringify(spec)}: ${parsed.problem}`);
  return parsed.map((hop) => {
    const c = sshConfigFor(configFile, [hop.host]);
    return { user: hop.user ?? c.user ?? userInfo().username, address: c.hostName ?? hop.host, port: hop.port ?? c.port ?? 22 };
  });
}

/**
 * How to reach a host: the inventory's values, then ~/.ssh/config's (looked up by the host's
 * name, then its address), then the defaults. HostName from the config only changes where SSH
 * connects; the cluster still uses the inventory's address.
 */
export function hostTarget(h: Host, env: NodeJS.ProcessEnv = process.env): HostTarget {
  const c = sshConfigFor(h.ssh.configFile, [h.name, h.address]);
  const configKeys = c.identityFiles.filter((f) => existsSync(f));
  return {
    name: h.name,
    address: c.hostName ?? h.address,
    port: h.ssh.port ?? c.port ?? SSH_DEFAULTS.port,
    user: h.ssh.user ?? c.user ?? SSH_DEFAULTS.user,
    privateKeyPath: h.ssh.privateKey ?? '',
    // IdentityFile is tried after the agent, like ssh does; without one, ssh's default files.
    defaultKeyPaths: configKeys.length ? configKeys : defaultKeyPaths(),
    agentSocket: env.SSH_AUTH_SOCK || undefined,
    jump: jumpHops(h.ssh.jump ?? c.proxyJump, h.ssh.configFile),
    sudo: h.ssh.sudo,
    knownHostsPath: h.ssh.knownHosts,
    hostKeyPolicy: h.ssh.hostKeyPolicy,
    connectTimeoutMs: h.ssh.connectTimeout * 1000,
    commandTimeoutMs: h.ssh.commandTimeout * 1000,
    persistMs: h.ssh.persist * 1000,
  };
}

/** The one masker of a command: every secret of the inventory, in every spelling the masker knows. */
export function secretMasker(inv: Inventory): Masker {
  return new Masker(secretValues(inv.secrets));
}

/** A Session over the connections there are. */
function sessionOver(inv: Inventory, conns: Map<string, Connection>, opts: { reporter: Reporter; masker: Masker; unreachable?: Map<string, string> }): Session {
  const unreachable = opts.unreachable ?? new Map<string, string>();
  const conn = (h: string | Host) => {
    const name = typeof h === 'string' ? h : h.name;
    const c = conns.get(name);
    if (!c) throw new HostError(name, unreachable.get(name) ?? 'not connected');
    return c;
  };
  return {
    inv,
    reporter: opts.reporter,
    masker: opts.masker,
    conns,
    unreachable,
    conn,
    withRole: (role) => inv.hostsWithRole(role).flatMap((h) => (conns.has(h.name) ? [conns.get(h.name)!] : [])),
    close: async () => {
      await Promise.all([...conns.values()].map((c) => c.close()));
    },
  };
}

function connectOptions(opts: SessionOptions, reporter: Reporter) {
  return { acceptNewHostKeys: opts.acceptNewHostKeys, passphrase: opts.passphrase, onCommand: reporter.command, onResult: reporter.result };
}

/** Per host: its connection once up, or undefined when the connect failed (never rejects). */
export interface Reach {
  pending: Map<string, Promise<Connection | undefined>>;
  unreachable: Map<string, string>;
  /** Resolves when every connect has settled: a Session over the reachable hosts. */
  session(): Promise<Session>;
  close(): Promise<void>;
}

/** Tolerant: every host connected on its own (at most REACH_CONNECT_TIMEOUT_SEC each); see Reach. */
export function connectEach(inv: Inventory, opts: SessionOptions & { connectTimeoutSec?: number } = {}): Reach {
  const masker = secretMasker(inv);
  const reporter = opts.reporter ?? new Reporter({ masker, log: opts.log });
  const connectTimeoutSec = opts.connectTimeoutSec ?? REACH_CONNECT_TIMEOUT_SEC;
  const unreachable = new Map<string, string>();
  const pending = new Map<string, Promise<Connection | undefined>>();
  const hosts = opts.hosts ?? inv.hosts;
  const keeper = opts.keeper && hosts.some((h) => h.ssh.persist > 0) ? KeeperClient.open(opts.keeper) : undefined;
  for (const h of hosts) {
    const target = hostTarget(h);
    target.connectTimeoutMs = Math.min(target.connectTimeoutMs, connectTimeoutSec * 1000);
    const connOpts = { ...connectOptions(opts, reporter), masker };
    // ssh2 is loaded only when a host is connected from here (not through the keeper): ~0.1 s.
    const direct = async () => (await import('../ssh/ssh.js')).SshConnection.connect(target, connOpts);
    // Through the keeper when there is one; by itself when the keeper cannot log in (a passphrase).
    const notKept = opts.keeper?.withoutDirect;
    const viaKeeper = async (): Promise<Connection> => {
      const k = await keeper;
      const c = k ? await k.connect(target, connOpts) : 'direct';
      if (c === 'direct' && notKept) throw notKept();
      return c === 'direct' ? direct() : c;
    };
    const connected = keeper && h.ssh.persist > 0 ? viaKeeper() : notKept ? Promise.reject(notKept()) : direct();
    pending.set(
      h.name,
      connected.catch((err: unknown) => {
        unreachable.set(h.name, err instanceof HostError ? err.message.slice(h.name.length + 2) : String(err));
        return undefined;
      }),
    );
  }
  const settled = async () => {
    const conns = new Map<string, Connection>();
    for (const [name, p] of pending) {
      const c = await p;
      if (c) conns.set(name, c);
    }
    return conns;
  };
  return {
    pending,
    unreachable,
    session: async () => sessionOver(inv, await settled(), { reporter, masker, unreachable }),
    close: async () => {
      await Promise.all([...(await settled()).values()].map((c) => c.close()));
    },
  };
}

/** All or nothing: on any failure the others are closed and a ConnectAllError lists every failed host. */
export async function openSession(inv: Inventory, opts: SessionOptions = {}): Promise<Session> {
  const masker = secretMasker(inv);
  const reporter = opts.reporter ?? new Reporter({ masker, log: opts.log });
  const { connectAll } = await import('../ssh/ssh.js');
  const conns: Map<string, Connection> = await connectAll((opts.hosts ?? inv.hosts).map((h) => hostTarget(h)), { ...connectOptions(opts, reporter), masker });
  return sessionOver(inv, conns, { reporter, masker });
}
