// `pgha status`.
import { Command } from 'commander';
import { runStatus } from '../../status/index.js';

export function registerStatus(program: Command): void {
  program
    .command('status')
    .summary('one view of the whole cluster with a verdict: healthy, degraded or down (read-only)')
    .description(
      'Show the cluster as its hosts see it, asked over SSH from each host in parallel: Patroni members ' +
        '(role, state, timeline, lag, pending restart, tags), etcd members (health, leader), what each ' +
        'HAProxy routes (its own stats), the last full and differential backups and WAL archiving on the ' +
        'leader, then a verdict with its reasons. A host that does not answer within 3 s is reported as ' +
        'unreachable; status still answers. Exit 0 healthy, 1 degraded, 2 down.',
    )
    .requiredOption('-i, --inventory <file>', 'inventory YAML file')
    .option('--json', 'print one JSON document (format in the README) instead of the table')
    .option('-w, --watch', 'refresh every 2 s until Ctrl+C')
    .option('-v, --verbose', 'show every command run on the hosts (secrets masked)')
    .action(async (opts: { inventory: string; json?: boolean; watch?: boolean; verbose?: boolean }) => {
      process.exitCode = await runStatus(opts.inventory, opts);
    });
}
