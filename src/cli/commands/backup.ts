// `pgha backup`, `pgha backups` and `pgha restore`.
import { Command, Option } from 'commander';
import { InputError } from '../../errors.js';
import { loadInventory } from '../../inventory/index.js';
import { openSession, type Session } from '../../cluster/session.js';
import { BACKUP_TYPES, formatBackupResult, takeBackup, type BackupType } from '../../backup/backup.js';
import { formatRepoInfo, repoInfoJson } from '../../backup/info.js';
import { stanzaInfo } from '../../cluster/pgbackrest.js';
import { parseTargetTime, type RestoreTarget } from '../../backup/target.js';
import { runRestore } from '../../backup/restore.js';

async function withSession<T>(inventory: string, fn: (s: Session) => Promise<T>): Promise<T> {
  const session = await openSession(await loadInventory(inventory));
  try {
    return await fn(session);
  } finally {
    await session.close();
  }
}

const out = (t: string) => process.stdout.write(t);

export function registerBackup(program: Command): void {
  program
    .command('backup')
    .summary('take a pgBackRest backup now')
    .description(
      'Take a pgBackRest backup of the cluster now, on the repository host as user pgbackrest (where the ' +
        'scheduled backups run), from whichever member leads. Shows pgBackRest\'s progress, then the new ' +
        'backup\'s label, type, size, size in the repository and duration. The default type is full: a backup ' +
        'that restores on its own. diff (changes since the last full) and incr (since the last backup) need a ' +
        'prior full backup. Exit 0 when the backup is in the repository, 1 when it failed, 2 on bad input.',
    )
    .requiredOption('-i, --inventory <file>', 'inventory YAML file')
    .addOption(new Option('--type <type>', 'backup type').choices([...BACKUP_TYPES]).default('full'))
    .action(async (opts: { inventory: string; type: BackupType }) => {
      await withSession(opts.inventory, async (session) => {
        out(`backup (${opts.type}) of stanza ${session.inv.pgbackrest.stanza}\n`);
        const r = await takeBackup(session, opts.type, (l) => out(`${l}\n`));
        out(`${formatBackupResult(r)}\n`);
      });
    });

  program
    .command('backups')
    .summary('list the backups in the repository and the stanza status')
    .description(
      'List the backups in the pgBackRest repository (label, type, start and stop time, duration, size, size ' +
        'in the repository, first and last WAL segment), the stanza status (pgBackRest\'s status code and ' +
        'message: its exit code is 0 even for a broken stanza) and the range of archived WAL. ' +
        'Exit 0 when the stanza status is ok, 1 otherwise.',
    )
    .requiredOption('-i, --inventory <file>', 'inventory YAML file')
    .option('--json', 'machine-readable output (times in ISO 8601 UTC, sizes in bytes)')
    .action(async (opts: { inventory: string; json?: boolean }) => {
      const info = await withSession(opts.inventory, stanzaInfo);
      out(opts.json ? `${JSON.stringify(repoInfoJson(info), null, 2)}\n` : `${formatRepoInfo(info)}\n`);
      process.exitCode = info.code === 0 ? 0 : 1;
    });

  program
    .command('restore')
    .summary('restore the whole cluster to a point in time or to a backup (destructive)')
    .description(
      'Restore the whole cluster to a point in time (--to) or to the end of one backup (--backup). DESTRUCTIVE: ' +
        'every member\'s data is replaced and writes after the target are lost. First it checks the target ' +
        'against the repository (not before the end of the earliest backup, not in the future) and shows the ' +
        'plan; nothing is stopped before you confirm (--yes, required without a terminal). Then: Patroni stopped ' +
        'on every member, the cluster\'s keys removed from etcd, the previous leader (or the first postgres ' +
        'host) restored by pgBackRest and recovered until the target is reached and it is promoted, Patroni ' +
        'started on it (it leads on a new timeline), a full backup on that timeline, the other members rebuilt ' +
        'from the repository, and verify. Each step is shown with its duration. ' +
        'Exit 0 when restored and verified, 1 on a failure, 2 on bad input (nothing changed).',
    )
    .requiredOption('-i, --inventory <file>', 'inventory YAML file')
    .option('--to <time>', 'target time with a UTC offset, e.g. "2024-05-01 10:11:12.345+00" (as `select now()` prints it)')
    .option('--backup <label>', 'restore to the end of this backup (a label from pgha backups)')
    .option('--yes', 'do not ask for confirmation')
    .action(async (opts: { inventory: string; to?: string; backup?: string; yes?: boolean }) => {
      if ((opts.to === undefined) === (opts.backup === undefined)) throw new InputError('give exactly one of --to TIME and --backup LABEL');
      const target: RestoreTarget = opts.to !== undefined ? { kind: 'time', ...parseTargetTime(opts.to) } : { kind: 'backup', label: opts.backup! };
      const tty = Boolean(process.stdin.isTTY && process.stdout.isTTY);
      const confirm = tty
        ? async (message: string) => {
            const { confirm: ask } = await import('@inquirer/prompts');
            return ask({ message, default: false });
          }
        : undefined;
      process.exitCode = await withSession(opts.inventory, (session) => runRestore(session, { target, yes: opts.yes, out, confirm }));
    });
}
