// `pgha backup`, `pgha backups` and `pgha restore`.
import { InputError } from '../../errors.js';
import type { CommandContext } from '../context.js';
import { stanzaInfo, type BackupType } from '../../components/pgbackrest/runner.js';
import { parseTargetTime, type RestoreTarget } from '../../components/pgbackrest/target.js';
import { formatBackupResult, formatRepoInfo, repoInfoJson } from './format.js';
import { takeBackup } from './backup.js';
import { restoreCluster } from './restore.js';

export async function backup(ctx: CommandContext, opts: { type: BackupType }): Promise<number> {
  const session = await ctx.session();
  ctx.out(`backup (${opts.type}) of stanza ${session.inv.pgbackrest.stanza}\n`);
  const r = await takeBackup(session, opts.type, (l) => ctx.out(`${l}\n`));
  ctx.out(`${formatBackupResult(r)}\n`);
  return 0;
}

export async function backups(ctx: CommandContext, opts: { json?: boolean }): Promise<number> {
  const info = await stanzaInfo(await ctx.session());
  ctx.out(opts.json ? `${JSON.stringify(repoInfoJson(info), null, 2)}\n` : `${formatRepoInfo(info)}\n`);
  return info.code === 0 ? 0 : 1;
}

export async function restore(ctx: CommandContext, opts: { to?: string; backup?: string; yes?: boolean }): Promise<number> {
  if ((opts.to === undefined) === (opts.backup === undefined)) throw new InputError('give exactly one of --to TIME and --backup LABEL');
  const target: RestoreTarget = opts.to !== undefined ? { kind: 'time', ...parseTargetTime(opts.to) } : { kind: 'backup', label: opts.backup! };
  const confirmation = { yes: opts.yes, noTerminal: 'restore replaces the data of every member: confirm with --yes (there is no terminal to ask on)' };
  return restoreCluster(await ctx.session(), { target, out: ctx.out, confirm: (question) => ctx.confirm(question, confirmation) });
}
