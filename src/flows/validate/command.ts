// `pgha validate` and `pgha schema`: the inventory checked (every problem at once, located) and
// its JSON Schema, without contacting any host. An inventory whose secrets file does not exist
// yet (a fresh clone's inventories/example.yml) is checked without it, with a note.
import { relative } from 'node:path';
import { InputError } from '../../errors.js';
import { inventoryJsonSchema, type Inventory } from '../../inventory/index.js';
import type { CommandContext } from '../context.js';

const ROLES = ['etcd', 'postgres', 'haproxy', 'backup_repository'] as const;

/** A problem line `FILE:LINE:COL: text` as JSON (a line without a position keeps only its text). */
export function problemJson(line: string): { file: string | null; line: number | null; column: number | null; message: string } {
  const m = /^(.*?):(\d+):(\d+): (.*)$/s.exec(line);
  return m ? { file: m[1], line: Number(m[2]), column: Number(m[3]), message: m[4] } : { file: null, line: null, column: null, message: line };
}

function secretsNote(inv: Inventory): string {
  const shown = relative(process.cwd(), inv.secretsFile) || inv.secretsFile;
  return `secrets file ${shown.startsWith('..') ? inv.secretsFile : shown} not found: the inventory was checked without it (apply and every command that contacts the hosts need it; pgha init writes one)`;
}

export async function validate(ctx: CommandContext, opts: { json?: boolean } = {}): Promise<number> {
  let inv: Inventory;
  try {
    inv = await ctx.inventory({ secretsOptional: true });
  } catch (err) {
    if (!(opts.json && err instanceof InputError)) throw err;
    const problems = err.lines.length ? err.lines.map(problemJson) : [problemJson(err.message)];
    ctx.out(`${JSON.stringify({ file: ctx.inventoryFile, ok: false, problems }, null, 2)}\n`);
    return err.exitCode;
  }
  const counts = Object.fromEntries(ROLES.map((r) => [r, inv.hostsWithRole(r).length]));
  const note = inv.secretsMissing ? secretsNote(inv) : undefined;
  if (opts.json) {
    const doc = {
      file: ctx.inventoryFile,
      ok: true,
      cluster: inv.cluster.name,
      hosts: inv.hosts.length,
      roles: counts,
      timing: inv.timing.profile,
      secrets_checked: !inv.secretsMissing,
      notes: note ? [note] : [],
      problems: [],
    };
    ctx.out(`${JSON.stringify(doc, null, 2)}\n`);
    return 0;
  }
  const text = ROLES.map((r) => `${counts[r]} ${r}`).join(', ');
  ctx.out(`${ctx.inventoryFile}: ok (cluster ${inv.cluster.name}: ${inv.hosts.length} hosts; ${text}; timing ${inv.timing.profile})\n`);
  if (note) ctx.err(`note: ${note}\n`);
  return 0;
}

/** The inventory's JSON Schema, as committed at schema/inventory.schema.json. */
export function schemaText(): string {
  return `${JSON.stringify(inventoryJsonSchema(), null, 2)}\n`;
}

export async function schema(ctx: CommandContext): Promise<number> {
  ctx.out(schemaText());
  return 0;
}
