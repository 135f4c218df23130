// The client side of the connection keeper (keeper.ts): finds the keeper of this user (starting
// one when there is none) and hands out connections that run their commands through it. A
// KeptConnection is a ShellConnection like any other: sudo, masking, the run log and the exit-code
// check happen here, in the command's own process; the keeper only carries the shell text.
import { spawn } from 'node:child_process';
import { statSync, writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { HostError } from '../errors.js';
import { CommandTimeout, ShellConnection, type RawResult, type ShellConnectionOptions } from './connection.js';
import { dial, onMessages, type KeeperAsk, type KeeperPlace, type KeeperReply } from './keeper-protocol.js';
import type { HostTarget } from './target.js';

/** How long a keeper just started may take to listen before the command connects by itself. */
const START_MS = 2000;
/** After a keeper failed to start, commands connect by themselves this long before one is tried again. */
const START_FAILED_MS = 10 * 60_000;

export class KeeperClient {
  private next = 1;
  private readonly waiting = new Map<number, (reply: KeeperReply) => void>();
  private users = 0;
  private gone: string | undefined;

  private constructor(private readonly socket: Socket) {
    socket.unref(); // only a question in flight keeps the process alive
    onMessages<KeeperReply>(socket, (reply) => this.settle(reply.id, reply));
    socket.on('error', () => {});
    socket.on('close', () => {
      this.gone ??= 'the connection keeper ended';
      for (const id of [...this.waiting.keys()]) this.settle(id, { id, error: this.gone });
    });
  }

  /** The keeper at `place` (started when none answers), or undefined: the command connects by itself. */
  static async open(place: KeeperPlace): Promise<KeeperClient | undefined> {
    let socket = await dial(place.socketPath);
    // A keeper that could not start lately is not waited for again on every call.
    const failed = `${place.socketPath}.failed`;
    if (!socket && Date.now() - (statSync(failed, { throwIfNoEntry: false })?.mtimeMs ?? 0) < START_FAILED_MS) return undefined;
    if (!socket) {
      const [cmd, ...args] = place.start;
      try {
        // Its own session: the terminal's Ctrl+C is for the command, not for the keeper.
        spawn(cmd, [...args, '__keeper', place.socketPath], { detached: true, stdio: 'ignore' }).on('error', () => {}).unref();
      } catch {
        return undefined;
      }
      const until = Date.now() + START_MS;
      while (!socket && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 20));
        socket = await dial(place.socketPath);
      }
      if (!socket) {
        try {
          writeFileSync(failed, '', { mode: 0o600 });
        } catch {
          // nowhere to remember it: the next call tries again
        }
      }
    }
    return socket && new KeeperClient(socket);
  }

  private settle(id: number, reply: KeeperReply) {
    const done = this.waiting.get(id);
    if (!done) return;
    this.waiting.delete(id);
    if (this.waiting.size === 0) this.socket.unref();
    done(reply);
  }

  /** One question; `backstopMs` (0: none) ends the wait if the keeper never answers. */
  request(req: KeeperAsk, backstopMs: number): Promise<KeeperReply> {
    const id = this.next++;
    if (this.gone) return Promise.resolve({ id, error: this.gone });
    return new Promise((resolve) => {
      const timer = backstopMs > 0 ? setTimeout(() => this.settle(id, { id, error: `the connection keeper did not answer within ${backstopMs / 1000} s` }), backstopMs) : undefined;
      this.waiting.set(id, (reply) => {
        clearTimeout(timer);
        resolve(reply);
      });
      this.socket.ref();
      this.socket.write(`${JSON.stringify({ ...req, id })}\n`);
    });
  }

  /**
   * A connection to `target` through the keeper; 'direct' when only the command itself can log in
   * (a key's passphrase) or the keeper is gone. An unreachable host throws its HostError.
   */
  async connect(target: HostTarget, opts: ShellConnectionOptions): Promise<KeptConnection | 'direct'> {
    const reply = await this.request({ op: 'connect', target }, target.connectTimeoutMs * 2 + 5000);
    if ('key' in reply) {
      this.users++;
      return new KeptConnection(target, this, reply.key, opts);
    }
    if ('error' in reply && !reply.passphrase && !this.gone) throw new HostError(target.name, reply.error);
    return 'direct';
  }

  release() {
    if (--this.users <= 0) this.socket.end();
  }
}

/** How long a client waits for the keeper past a command's own limit (0: none): a keeper that died with the command. */
const backstop = (timeoutMs: number) => (timeoutMs > 0 ? timeoutMs + 10_000 : 0);

/** A host's connection held by the keeper. */
export class KeptConnection extends ShellConnection {
  private closed = false;

  constructor(
    target: HostTarget,
    private readonly client: KeeperClient,
    private readonly key: string,
    opts: ShellConnectionOptions,
  ) {
    super(target, opts);
  }

  protected async exec(text: string, stdin: string | undefined, timeoutMs: number): Promise<RawResult> {
    // The keeper enforces timeoutMs.
    return this.reply(await this.client.request({ op: 'exec', key: this.key, text, stdin, timeoutMs }, backstop(timeoutMs)));
  }

  /** As root, the keeper runs `rootText` in the host's kept root shell when it has one free, `text` on a channel of its own otherwise. */
  protected async execAsRoot(text: string, rootText: string, timeoutMs: number): Promise<RawResult> {
    return this.reply(await this.client.request({ op: 'exec', key: this.key, text, rootText, timeoutMs }, backstop(timeoutMs)));
  }

  protected execKeptSql(start: string, sql: string, timeoutMs: number): Promise<RawResult> {
    return this.client.request({ op: 'sql', key: this.key, start, sql, timeoutMs }, backstop(timeoutMs)).then((r) => this.reply(r));
  }

  httpKept(urls: string[], opts: { ca?: string[]; timeoutMs: number }): Promise<({ status: number; body: string } | { error: string })[]> {
    const shown = urls.map((u) => `GET ${u} (over the SSH connection)`);
    for (const s of shown) this.onCommand?.(this.target.name, s);
    const started = Date.now();
    return this.client.request({ op: 'http', key: this.key, urls, ca: opts.ca, timeoutMs: opts.timeoutMs }, backstop(opts.timeoutMs)).then((reply) => {
      const answers = 'answers' in reply ? reply.answers : urls.map(() => ({ error: 'error' in reply ? reply.error : 'the connection keeper gave no answer' }));
      answers.forEach((a, i) =>
        this.onResult?.(this.target.name, shown[i], 'error' in a ? { code: -1, stdout: '', stderr: a.error, ms: Date.now() - started } : { code: 0, stdout: `HTTP ${a.status}\n${a.body}`, stderr: '', ms: Date.now() - started, quiet: true }),
      );
      return answers;
    });
  }

  private reply(reply: KeeperReply): RawResult {
    if ('result' in reply) return reply.result;
    if ('timeout' in reply) throw new CommandTimeout();
    throw new HostError(this.target.name, 'error' in reply ? reply.error : 'the connection keeper gave no answer');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.client.release();
  }
}
