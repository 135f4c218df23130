// The connection keeper's address, its messages and how they travel (keeper.ts serves, kept.ts and
// the quick status client ask), kept apart from both: the CLI finds the keeper's socket on every
// command without loading SSH code (or node:crypto, which costs a quick `pgha status` its start).
import { lstatSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createConnection, type Socket } from 'node:net';
import envPaths from 'env-paths';
import type { RawResult } from './connection.js';
import type { HostTarget } from './target.js';

/** Bumped on any change of the messages below: a client never talks to a keeper of another kind. */
export const KEEPER_PROTOCOL = 3;

/** What a client asks (the connection for a target; a command on it), and the same with its number. */
/** An exec with `rootText` (the same command unwrapped, no stdin) may run in the host's kept root shell (root-shell.ts). */
/** A sql asks the host's kept psql (kept-psql.ts) that `start` runs (started when there is none). */
export type KeeperAsk =
  | { op: 'connect'; target: HostTarget }
  | { op: 'exec'; key: string; text: string; stdin?: string; rootText?: string; timeoutMs: number }
  | { op: 'sql'; key: string; start: string; sql: string; timeoutMs: number }
  /** GETs over channels of the connection (forwarded-http.ts), HTTPS verified against `ca`. */
  | { op: 'http'; key: string; urls: string[]; ca?: string[]; timeoutMs: number }
  /** A whole `pgha status` (quick-status.ts asks, flows/status/served.ts answers). */
  | { op: 'status'; request: ServedStatusRequest };
export type KeeperRequest = KeeperAsk & { id: number };

export type KeeperReply =
  | { id: number; key: string }
  /** The connect failed: why, in the words a direct connect would use. passphrase: only a direct connect (which can ask for it) can log in. */
  | { id: number; error: string; passphrase?: boolean }
  | { id: number; result: RawResult }
  | { id: number; answers: ({ status: number; body: string } | { error: string })[] }
  | { id: number; timeout: true }
  /** A status answered: what the command prints and its exit code; or why the client must run it itself. */
  | { id: number; status: { out: string; err: string; code: number } | { fallback: string } };

/**
 * What a `pgha status` the keeper answers needs from its client: the inventory as the client named it
 * and the directory it is relative to, its options, whether its output takes colours, and the environment variables that decide
 * how hosts are reached (compared with the keeper's own: any difference, and the client runs it itself).
 */
export interface ServedStatusRequest {
  inventory: string;
  cwd: string;
  json: boolean;
  color: boolean;
  env: Record<string, string | undefined>;
}

/** The environment a status depends on (ssh's agent and files, the runtime and cache directories). */
export const SERVED_ENV = ['HOME', 'SSH_AUTH_SOCK', 'PGHA_RUNTIME_DIR', 'XDG_RUNTIME_DIR', 'XDG_CACHE_HOME'] as const;

/** Where a keeper listens, and the command that starts one (the running pgha, with `__keeper SOCKET` added). */
export interface KeeperPlace {
  socketPath: string;
  start: string[];
  /**
   * Set in the keeper itself (a status it answers): a host it cannot keep (a key's passphrase, or no
   * ssh.persist) fails with this error instead of being connected directly.
   */
  withoutDirect?: () => Error;
}

/**
 * The user's private runtime directory for pgha (made when missing): $PGHA_RUNTIME_DIR, else
 * $XDG_RUNTIME_DIR/pgha, else the user's cache directory. undefined when it is not the user's alone.
 */
export function privateRuntimeDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const dir = env.PGHA_RUNTIME_DIR || (env.XDG_RUNTIME_DIR ? join(env.XDG_RUNTIME_DIR, 'pgha') : envPaths('pgha', { suffix: '' }).cache);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = lstatSync(dir);
    // Whoever can open the keeper's socket runs commands on the hosts: the directory must be this user's only.
    if (!st.isDirectory() || st.uid !== process.getuid?.() || (st.mode & 0o077) !== 0) return undefined;
  } catch {
    return undefined;
  }
  return dir;
}

/** The keeper's socket for this pgha (its version and protocol in the name), in privateRuntimeDir. */
export function keeperSocketPath(version: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const dir = privateRuntimeDir(env);
  return dir && join(dir, `keeper-${KEEPER_PROTOCOL}-${version}.sock`);
}

/** A connection to the socket at `path`, or undefined when nobody listens there. */
export function dial(path: string): Promise<Socket | undefined> {
  return new Promise((resolve) => {
    const s = createConnection(path);
    s.once('connect', () => resolve(s));
    s.once('error', () => {
      s.destroy();
      resolve(undefined);
    });
  });
}

/** Calls `onMessage` with each JSON line the socket brings; a line that is no JSON ends the connection. */
export function onMessages<T>(socket: Socket, onMessage: (message: T) => void): void {
  let buffered = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      let message: T;
      try {
        message = JSON.parse(line) as T;
      } catch {
        socket.destroy();
        return;
      }
      onMessage(message);
    }
  });
}
