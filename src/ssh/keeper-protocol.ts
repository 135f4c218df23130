// The connection keeper's address, its messages and how they travel (keeper.ts serves, kept.ts asks), kept apart
// from both: the CLI finds the keeper's socket on every command without loading SSH code.
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createConnection, type Socket } from 'node:net';
import envPaths from 'env-paths';
import type { RawResult } from './connection.js';
import type { HostTarget } from './target.js';

/** Bumped on any change of the messages below: a client never talks to a keeper of another kind. */
export const KEEPER_PROTOCOL = 2;

/** What a client asks (the connection for a target; a command on it), and the same with its number. */
/** An exec with `rootText` (the same command unwrapped, no stdin) may run in the host's kept root shell (root-shell.ts). */
/** A sql asks the host's kept psql (kept-psql.ts) that `start` runs (started when there is none). */
export type KeeperAsk =
  | { op: 'connect'; target: HostTarget }
  | { op: 'exec'; key: string; text: string; stdin?: string; rootText?: string; timeoutMs: number }
  | { op: 'sql'; key: string; start: string; sql: string; timeoutMs: number }
  /** GETs over channels of the connection (forwarded-http.ts), HTTPS verified against `ca`. */
  | { op: 'http'; key: string; urls: string[]; ca?: string[]; timeoutMs: number };
export type KeeperRequest = KeeperAsk & { id: number };

export type KeeperReply =
  | { id: number; key: string }
  /** The connect failed: why, in the words a direct connect would use. passphrase: only a direct connect (which can ask for it) can log in. */
  | { id: number; error: string; passphrase?: boolean }
  | { id: number; result: RawResult }
  | { id: number; answers: ({ status: number; body: string } | { error: string })[] }
  | { id: number; timeout: true };

/** The fields that make two targets the same connection (not the timeouts). */
export function connectionKey(t: HostTarget): string {
  const same = [t.name, t.address, t.port, t.user, t.privateKeyPath, t.defaultKeyPaths ?? [], t.agentSocket ?? '', t.jump ?? [], t.knownHostsPath, t.hostKeyPolicy];
  return createHash('sha256').update(JSON.stringify(same)).digest('hex').slice(0, 32);
}

/** Where a keeper listens, and the command that starts one (the running pgha, with `__keeper SOCKET` added). */
export interface KeeperPlace {
  socketPath: string;
  start: string[];
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
