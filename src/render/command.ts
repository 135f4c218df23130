// The plain function behind `pgha render`.
import { relative } from 'node:path';
import { loadInventory } from '../inventory/index.js';
import { dcsForPatroniVersion, renderToDir } from './index.js';

export interface RenderFlags {
  inventory: string;
  output: string;
  host?: string;
  patroniVersion: string;
  showSecrets?: boolean;
}

export async function runRender(flags: RenderFlags, out: (text: string) => void): Promise<void> {
  const dcs = dcsForPatroniVersion(flags.patroniVersion);
  const inv = await loadInventory(flags.inventory);
  if (flags.host) inv.host(flags.host); // an unknown name is bad input
  const written = await renderToDir(inv, flags.output, { dcs, host: flags.host, showSecrets: flags.showSecrets });
  for (const f of written) {
    const rel = relative(process.cwd(), f);
    out(`${rel && !rel.startsWith('..') ? rel : f}\n`);
  }
  out(`${written.length} files rendered (Patroni ${flags.patroniVersion}: DCS ${dcs}${flags.showSecrets ? '' : ', secrets masked'})\n`);
}
