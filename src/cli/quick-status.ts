// The quick `pgha status`: when a connection keeper runs (src/ssh/keeper.ts), bin/pgha.js hands it
// a plain `pgha status [-i FILE] [--json]` before loading the CLI, and prints its answer. The keeper
// has the command's modules loaded and the hosts connected, so the call costs little more than
// starting node. Anything else (other options, no keeper, a passphrase in the environment, an answer
// the keeper hands back) is undefined here, and the CLI runs the command as always.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { $ as colors } from 'kleur/colors';
import { dial, keeperSocketPath, onMessages, SERVED_ENV, type KeeperReply, type ServedStatusRequest } from '../ssh/keeper-protocol.js';
import { pghaVersion } from '../package-files.js';
import { inventoryNote, locateInventory } from './inventory-path.js';

/** A keeper that has not answered by then is given up (the CLI runs the command): above status's own limits. */
const ANSWER_MS = 60_000;

/** The options of a status the keeper may answer (`args`: after `status`); undefined for any other. */
export function quickStatusOptions(args: string[]): { inventory?: string; json: boolean } | undefined {
  const o: { inventory?: string; json: boolean } = { json: false };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--json' && !o.json) o.json = true;
    else if ((a === '-i' || a === '--inventory') && o.inventory === undefined && i + 1 < args.length && !args[i + 1].startsWith('-')) o.inventory = args[++i];
    else if (a.startsWith('--inventory=') && o.inventory === undefined && a.length > '--inventory='.length) o.inventory = a.slice('--inventory='.length);
    else return undefined;
  }
  return o;
}

export interface QuickIo {
  env: NodeJS.ProcessEnv;
  cwd: string;
  color: boolean;
  /** The command's output; `code` its exit code (also when the reader goes away early). */
  out: (text: string, code: number) => void;
  err: (text: string) => void;
}

const processIo = (): QuickIo => ({
  env: process.env,
  cwd: process.cwd(),
  color: Boolean(colors.enabled),
  out: (t, code) => {
    // A reader that went away (`pgha status | head -3`) ends the output, as in the CLI (main.ts).
    process.stdout.on('error', (err: NodeJS.ErrnoException) => process.exit(err.code === 'EPIPE' ? code : 1));
    process.stdout.write(t);
  },
  err: (t) => void process.stderr.write(t),
});

/** The exit code of a status the keeper answered; undefined: the CLI runs the command itself. */
export async function quickStatus(argv: string[], io: QuickIo = processIo()): Promise<number | undefined> {
  if (argv[2] !== 'status') return undefined;
  const opts = quickStatusOptions(argv.slice(3));
  // A passphrase is for the command's own connections; the keeper never gets one.
  if (!opts || io.env.PGHA_SSH_PASSPHRASE !== undefined) return undefined;
  const inventory = locateInventory(opts.inventory, io.env, (p) => existsSync(resolve(io.cwd, p)));
  const socketPath = inventory && keeperSocketPath(pghaVersion(), io.env);
  // No keeper yet: the CLI starts one.
  const socket = socketPath ? await dial(socketPath) : undefined;
  if (!inventory || !socket) return undefined;
  const request: ServedStatusRequest = {
    inventory: inventory.file,
    cwd: io.cwd,
    json: opts.json,
    color: io.color,
    env: Object.fromEntries(SERVED_ENV.map((k) => [k, io.env[k]])),
  };
  const reply = await new Promise<KeeperReply | undefined>((done) => {
    const timer = setTimeout(() => done(undefined), ANSWER_MS);
    onMessages<KeeperReply>(socket, (r) => {
      clearTimeout(timer);
      done(r);
    });
    socket.on('error', () => {});
    // A keeper that ended without answering: the CLI runs the command.
    socket.on('close', () => {
      clearTimeout(timer);
      done(undefined);
    });
    socket.write(`${JSON.stringify({ op: 'status', request, id: 1 })}\n`);
  });
  socket.destroy();
  if (!reply || !('status' in reply) || 'fallback' in reply.status) return undefined;
  io.err(inventoryNote(inventory) + reply.status.err);
  io.out(reply.status.out, reply.status.code);
  return reply.status.code;
}

