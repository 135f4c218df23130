// `pgha status` answered inside the connection keeper (src/ssh/keeper.ts), for the quick client
// (src/cli/quick-status.ts): the keeper's modules are loaded and warm, its connections open, so a
// repeated status costs its caller little more than starting node. The same command as the CLI
// runs (status(ctx, opts)), over a context built from the client's request; anything this path
// cannot do as the CLI would (bad input, a host only a direct connection can log in to, another
// environment) is not answered but handed back, and the client runs the command itself.
import { createContext } from '../../cli/context.js';
import { PghaError } from '../../errors.js';
import { SERVED_ENV, type ServedStatusRequest } from '../../ssh/keeper-protocol.js';
import { status } from './command.js';

/** Why the client must run this status itself: a reason, never shown to the operator. */
class HandBack extends PghaError {}

export async function serveStatus(req: ServedStatusRequest, socketPath: string): Promise<{ out: string; err: string; code: number } | { fallback: string }> {
  const differs = SERVED_ENV.find((k) => (req.env[k] ?? '') !== (process.env[k] ?? ''));
  if (differs) return { fallback: `$${differs} differs from the keeper's` };
  let out = '';
  let err = '';
  let handedBack: string | undefined;
  const ctx = createContext({
    inventoryFile: req.inventory,
    cwd: req.cwd,
    out: (t) => void (out += t),
    err: (t) => void (err += t),
    // Nothing is asked here: no terminal, no passphrase (a key that needs one is the client's to open).
    tty: false,
    color: req.color,
    passphrase: undefined,
    keeper: {
      socketPath,
      start: [],
      withoutDirect: () => {
        handedBack = 'a host needs a connection of the command itself';
        return new HandBack(handedBack);
      },
    },
  });
  try {
    const code = await status(ctx, { json: req.json });
    return handedBack ? { fallback: handedBack } : { out, err, code };
  } catch (e) {
    // Bad input and the like: the command itself says it, in its own words and exit code.
    return { fallback: e instanceof Error ? e.message : String(e) };
  } finally {
    await ctx.close();
  }
}
