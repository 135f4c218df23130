// `pgha prometheus`: writes the cluster's Prometheus scrape configuration and alert rules file
// (src/components/monitoring/prometheus.ts) into a directory, for the operator to load. Contacts no host.
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { InputError } from '../../errors.js';
import { alertRules, scrapeConfig } from '../../components/monitoring/prometheus.js';
import { loadClusterCa } from '../../components/tls/ca.js';
import { tlsOn } from '../../components/tls/paths.js';
import type { CommandContext } from '../context.js';

const caName = (inv: { cluster: { name: string } }) => `pgha-${inv.cluster.name}-ca.crt`;

export async function prometheus(ctx: CommandContext, opts: { output: string }): Promise<number> {
  const inv = await ctx.inventory();
  if (!inv.monitoring) throw new InputError(`${ctx.inventoryFile}: monitoring is not true: the exporters these files scrape are not installed (set monitoring: true and run pgha apply)`);
  await mkdir(opts.output, { recursive: true });
  const files = [
    [`pgha-${inv.cluster.name}-scrape.yml`, scrapeConfig(inv, resolve(opts.output, caName(inv)))],
    [`pgha-${inv.cluster.name}-rules.yml`, alertRules(inv)],
  ];
  // With TLS, Prometheus verifies Patroni's endpoints against the cluster CA: its certificate beside them.
  if (tlsOn(inv)) {
    const ca = await loadClusterCa(inv);
    if (!ca) throw new InputError(`${ctx.inventoryFile}: no cluster CA yet (pgha apply makes it): the scrape configuration needs its certificate`);
    files.push([caName(inv), ca.certPem]);
  }
  for (const [name, text] of files) {
    const path = join(opts.output, name);
    await writeFile(`${path}.tmp`, text, { mode: 0o644 });
    await rename(`${path}.tmp`, path);
    ctx.out(`wrote ${path}\n`);
  }
  ctx.out('merge the scrape_configs into prometheus.yml and list the rules file under rule_files; check it with: promtool check rules FILE\n');
  return 0;
}
