// The connection keeper: a background pgha process that holds SSH connections open between
// commands, as ssh's ControlPersist does, so a repeated `pgha status` skips the handshakes. It
// listens on a Unix socket in a directory only its user can enter (the socket runs commands on the
// hosts as that user's SSH login, like an OpenSSH control socket), connects a host when a client
// first asks for it, and closes each connection after the host's `ssh.persist` seconds unused; it
// ends when it holds none. No passphrase reaches it (a key that needs one makes its client connect
// directly), and commands' input only passes through.
// Before each reuse the host keys are checked against known_hosts again and the connection is
// probed, so a removed key or a dead peer means a fresh connection (with its own verdict).
// A root command a client sends in both forms (a batch of status's questions) runs in the host's
// kept root shell (root-shell.ts) when that is free: no new session, login shell or sudo each time.
// It also answers a whole `pgha status` for the quick client (flows/status/served.ts): then it
// reads the inventory and its secrets, as the command would, for that answer only.
import { createHash } from 'node:crypto';
import { unlinkSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { HostError, PghaError } from '../errors.js';
import { NO_PASSPHRASE } from './auth.js';
import { CommandTimeout } from './connection.js';
import { readKnownHosts, verifyHostKey } from './known-hosts.js';
import type { RawResult } from './connection.js';
import { forwardedGet } from './forwarded-http.js';
import type { KeptPsql } from './kept-psql.js';
import type { RootShell } from './root-shell.js';
import { SshConnection } from './ssh.js';
import type { HostTarget } from './target.js';
import { dial, onMessages, type KeeperReply, type KeeperRequest } from './keeper-protocol.js';

/** A kept connection is probed before reuse; an answer slower than this counts as a dead peer. */
const PROBE_MS = 1500;
const SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;
/** A host that refused a kept root shell (sudo asks for a password) is not asked again for this long. */
const SHELL_RETRY_MS = 60_000;
/** How often idle connections are looked for. */
const SWEEP_MS = 1000;
/** A keeper with nothing to keep and no client waits this long for one, then ends. */
const EMPTY_GRACE_MS = 10_000;

/** The fields that make two targets the same connection (not the timeouts). */
export function connectionKey(t: HostTarget): string {
  const same = [t.name, t.address, t.port, t.user, t.privateKeyPath, t.defaultKeyPaths ?? [], t.agentSocket ?? '', t.jump ?? [], t.knownHostsPath, t.hostKeyPolicy];
  return createHash('sha256').update(JSON.stringify(same)).digest('hex').slice(0, 32);
}

interface Kept {
  target: HostTarget;
  conn: SshConnection;
  lastUsed: number;
  /** Commands running on it now, and clients holding it: a connection in use is never idle. */
  busy: number;
  users: number;
  /** The host's kept root shell: started on the first root command, given up with the connection. */
  shell?: RootShell;
  shellStarting?: boolean;
  shellRefusedAt?: number;
  /** Its kept psql sessions, by the command that starts them. */
  psql: Map<string, KeptPsql>;
}

/** The SQL's answer from the host's kept psql for `start`; one whose server went away since its last answer is replaced, and asked again. */
async function keptQuery(k: Kept, start: string, sql: string, timeoutMs: number): Promise<RawResult> {
  for (let attempt = 1; ; attempt++) {
    let psql = k.psql.get(start);
    if (!psql?.alive) {
      psql = await k.conn.openPsql(start);
      if (!psql) throw new HostError(k.target.name, 'the host refused a channel for psql');
      k.psql.set(start, psql);
    }
    try {
      return await psql.query(sql, timeoutMs);
    } catch (err) {
      // Only read-only SQL is asked this way (status): asking again is safe.
      if (err instanceof CommandTimeout || attempt > 1 || !psql.answered) throw err;
    }
  }
}

/**
 * The host's root shell, claimed (busy) for one command; undefined: run the command on a channel of
 * its own (no sudo, the shell busy or starting for another command, or refused lately).
 */
async function claimShell(k: Kept): Promise<RootShell | undefined> {
  if ((k.target.user !== 'root' && !k.target.sudo) || k.shellStarting) return undefined;
  if (!k.shell?.alive) {
    if (Date.now() - (k.shellRefusedAt ?? 0) < SHELL_RETRY_MS) return undefined;
    k.shellStarting = true;
    try {
      k.shell = await k.conn.openRootShell();
    } finally {
      k.shellStarting = false;
    }
    if (!k.shell) k.shellRefusedAt = Date.now();
  }
  const shell = k.shell;
  if (!shell?.alive || shell.busy) return undefined;
  shell.busy = true; // claimed before anything else can look
  return shell;
}

/** Every host key the connection verified is still what known_hosts says. */
function keysStillKnown(k: Kept): boolean {
  try {
    const entries = readKnownHosts(k.target.knownHostsPath);
    return k.conn.verifiedKeys.every((v) => verifyHostKey(entries, v.address, v.port, v.key).status === 'match');
  } catch {
    return false;
  }
}

export interface KeeperOptions {
  /** Stops the keeper (as SIGTERM does). */
  signal?: AbortSignal;
  /** Default EMPTY_GRACE_MS. */
  emptyGraceMs?: number;
}

/** Serves clients on `socketPath` until nothing is kept; resolves when it has stopped. */
export async function runKeeper(socketPath: string, opts: KeeperOptions = {}): Promise<number> {
  const grace = opts.emptyGraceMs ?? EMPTY_GRACE_MS;
  const kept = new Map<string, Kept>();
  const connecting = new Map<string, Promise<Kept>>();
  const clients = new Set<Socket>();
  let emptySince = Date.now();

  const drop = (key: string) => {
    const k = kept.get(key);
    kept.delete(key);
    void k?.conn.close();
  };

  /** A live, verified connection for `target`: the kept one when it still passes, else a new one. */
  const connection = async (target: HostTarget): Promise<Kept> => {
    const key = connectionKey(target);
    const pending = connecting.get(key);
    if (pending) return pending;
    const existing = kept.get(key);
    // A dead or stuck peer does not answer the probe: connect afresh below.
    if (existing && existing.conn.alive && keysStillKnown(existing) && (await existing.conn.ping(Math.min(PROBE_MS, target.connectTimeoutMs)))) {
      existing.lastUsed = Date.now();
      existing.target = target; // the newest persist time and timeouts
      return existing;
    }
    if (kept.get(key) === existing) drop(key);
    const p = SshConnection.connect(target, {}).then((conn) => {
      const k: Kept = { target, conn, lastUsed: Date.now(), busy: 0, users: 0, psql: new Map() };
      kept.set(key, k);
      return k;
    });
    connecting.set(key, p);
    try {
      return await p;
    } finally {
      connecting.delete(key);
    }
  };

  /** One request of a client; `held`: the connections that client was given (in use until it leaves). */
  const answer = async (req: KeeperRequest, held: Kept[]): Promise<KeeperReply> => {
    if (req.op === 'connect') {
      try {
        const k = await connection(req.target);
        k.users++;
        held.push(k);
        return { id: req.id, key: connectionKey(req.target) };
      } catch (err) {
        const message = err instanceof HostError ? err.message.slice(req.target.name.length + 2) : String(err);
        return { id: req.id, error: message, ...(message.includes(NO_PASSPHRASE) ? { passphrase: true } : {}) };
      }
    }
    if (req.op === 'status') {
      try {
        const { serveStatus } = await import('../flows/status/served.js');
        return { id: req.id, status: await serveStatus(req.request, socketPath) };
      } catch (err) {
        return { id: req.id, status: { fallback: String(err) } };
      }
    }
    const k = kept.get(req.key);
    if (!k) return { id: req.id, error: 'the kept connection was closed' };
    k.busy++;
    try {
      if (req.op === 'http') {
        // Each URL's own answer or failure.
        const get = (url: string) => forwardedGet((host, port) => k.conn.forward(host, port), url, { ca: req.ca, timeoutMs: req.timeoutMs }).catch((err: Error) => ({ error: err.message }));
        return { id: req.id, answers: await Promise.all(req.urls.map(get)) };
      }
      if (req.op === 'sql') return { id: req.id, result: await keptQuery(k, req.start, req.sql, req.timeoutMs) };
      const shell = req.rootText !== undefined && req.stdin === undefined ? await claimShell(k) : undefined;
      const result = shell ? await shell.run(req.rootText!, req.timeoutMs) : await k.conn.execText(req.text, req.stdin, req.timeoutMs);
      return { id: req.id, result };
    } catch (err) {
      if (err instanceof CommandTimeout) return { id: req.id, timeout: true };
      return { id: req.id, error: err instanceof HostError ? err.message.slice(k.target.name.length + 2) : err instanceof PghaError ? err.message : String(err) };
    } finally {
      k.busy--;
      k.lastUsed = Date.now();
    }
  };

  const server = createServer((socket) => {
    clients.add(socket);
    const held: Kept[] = [];
    onMessages<KeeperRequest>(socket, (req) => {
      void answer(req, held).then((reply) => {
        if (!socket.destroyed) socket.write(`${JSON.stringify(reply)}\n`);
      });
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      clients.delete(socket);
      for (const k of held) {
        k.users--;
        k.lastUsed = Date.now();
      }
      emptySince = Date.now();
    });
  });

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
  try {
    await listen();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    // Another keeper answers there: it serves. Nobody does: a stale socket, taken over.
    const other = await dial(socketPath);
    other?.destroy();
    if (other) return 0;
    unlinkSync(socketPath);
    await listen();
  }
  server.on('error', () => {});
  // The status a quick client asks for (served.ts) loads its modules now, not on the first request.
  setTimeout(() => void import('../flows/status/served.js').catch(() => {}), 0).unref();

  return new Promise<number>((resolve) => {
    const stop = () => {
      clearInterval(sweep);
      for (const s of SIGNALS) process.off(s, stop);
      opts.signal?.removeEventListener('abort', stop);
      for (const key of [...kept.keys()]) drop(key);
      server.close();
      try {
        unlinkSync(socketPath);
      } catch {
        // already gone (another keeper took the path over)
      }
      for (const c of clients) c.destroy();
      resolve(0);
    };
    const sweep = setInterval(() => {
      const now = Date.now();
      for (const [key, k] of kept) {
        const persist = k.target.persistMs ?? 0;
        if (!k.conn.alive || (k.busy === 0 && k.users === 0 && now - k.lastUsed > persist)) drop(key);
      }
      if (kept.size > 0 || connecting.size > 0 || clients.size > 0) emptySince = now;
      else if (now - emptySince > grace) stop();
    }, Math.min(SWEEP_MS, grace));
    for (const s of SIGNALS) process.once(s, stop);
    opts.signal?.addEventListener('abort', stop);
  });
}
