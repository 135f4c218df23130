// `pgha validate` and `pgha schema`: the inventory checked (every problem at once, located) and
// its JSON Schema, without contacting any host.
import { inventoryJsonSchema } from '../../inventory/index.js';
import type { CommandContext } from '../context.js';

export async function validate(ctx: CommandContext): Promise<number> {
  const inv = await ctx.inventory();
  const counts = (['etcd', 'postgres', 'haproxy', 'backup_repository'] as const).map((r) => `${inv.hostsWithRole(r).length} ${r}`).join(', ');
  ctx.out(`${ctx.inventoryFile}: ok (cluster ${inv.cluster.name}: ${inv.hosts.length} hosts; ${counts}; timing ${inv.timing.profile})\n`);
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
