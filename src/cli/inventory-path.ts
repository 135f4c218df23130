// Which inventory a command uses, and the note saying where it came from: shared by the CLI's
// context and by the quick `pgha status` client (quick-status.ts), which must not load the rest.
import { existsSync } from 'node:fs';

/** The environment variable that names the inventory when -i is not given. */
export const INVENTORY_ENV = 'PGHA_INVENTORY';
/** The inventory used when neither -i nor $PGHA_INVENTORY names one. */
export const DEFAULT_INVENTORY = 'inventory.yml';

/** -i, else $PGHA_INVENTORY, else ./inventory.yml if it exists (and why); undefined: none of them. */
export function locateInventory(given: string | undefined, env: NodeJS.ProcessEnv = process.env, exists: (path: string) => boolean = existsSync): { file: string; from?: string } | undefined {
  if (given) return { file: given };
  if (env[INVENTORY_ENV]) return { file: env[INVENTORY_ENV]!, from: `$${INVENTORY_ENV}` };
  if (exists(DEFAULT_INVENTORY)) return { file: DEFAULT_INVENTORY, from: 'the current directory' };
  return undefined;
}

/** The line on stderr when the inventory was not named by -i. */
export const inventoryNote = (r: { file: string; from?: string }) => (r.from ? `pgha: inventory ${r.file} (from ${r.from})\n` : '');
