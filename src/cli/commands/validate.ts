// `pgha validate`: checks an inventory and its secrets file without contacting any host.
import { Command } from 'commander';
import { runValidate } from '../../inventory/commands.js';

export function registerValidate(program: Command): void {
  program
    .command('validate')
    .summary('check an inventory and its secrets file (contacts no host)')
    .description(
      'Check an inventory and its secrets file without contacting any host. Prints "FILE: ok" and exits 0, ' +
        'or prints every problem at once, one per line as FILE:LINE:COL: path.to.field: problem, and exits 2.',
    )
    .requiredOption('-i, --inventory <file>', 'inventory YAML file')
    .action(async (opts: { inventory: string }) => {
      await runValidate(opts.inventory, (t) => process.stdout.write(t));
    });
}
