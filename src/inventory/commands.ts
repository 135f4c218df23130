// The plain functions behind `pgha validate` and `pgha schema`.
import { loadInventory, inventoryJsonSchema } from './index.js';

/** Validates an inventory and its secrets file; throws InputError (exit 2) listing every problem. */
export async function runValidate(file: string, out: (text: string) => void): Promise<void> {
  const inv = await loadInventory(file);
  const counts = (['etcd', 'postgres', 'haproxy', 'backup_repository'] as const)
    .map((r) => `${inv.hostsWithRole(r).length} ${r}`)
    .join(', ');
  out(`${file}: ok (cluster ${inv.cluster.name}: ${inv.hosts.length} hosts; ${counts}; timing ${inv.timing.profile})\n`);
}

/** The inventory's JSON Schema, as committed at schema/inventory.schema.json. */
export function schemaText(): string {
  return `${JSON.stringify(inventoryJsonSchema(), null, 2)}\n`;
}
