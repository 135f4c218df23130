// `pgha switchover` and `pgha failover`.
import { Command } from 'commander';
import { runFailover, runSwitchover } from '../../switchover/index.js';

export function registerSwitchover(program: Command): void {
  program
    .command('switchover')
    .summary('move the leader to a healthy replica, planned (now or at a given time)')
    .description(
      'Planned leader change through Patroni. Checks first: a running leader, the cluster not paused, and the ' +
        'candidate (if named) a member that runs, streams from the leader within maximum_lag_on_failover and is ' +
        'not tagged nofailover; without --candidate Patroni picks. Asks for confirmation (or --yes; without a ' +
        'terminal --yes is required). Then waits until the new leader is primary, every HAProxy routes its ' +
        'primary port to it and the old leader streams from it, printing how long each step took. With --at it ' +
        'schedules the switchover and returns once Patroni accepted it. Exit 0 done, 1 refused or failed ' +
        '(nothing changed when refused), 2 bad input.',
    )
    .requiredOption('-i, --inventory <file>', 'inventory YAML file')
    .option('--candidate <name>', 'the member to promote (default: Patroni picks a healthy replica)')
    .option('--at <time>', 'schedule it: ISO 8601 time with a timezone, in the future (e.g. 2030-01-31T02:00:00+01:00)')
    .option('-y, --yes', 'do not ask for confirmation')
    .action(async (opts: { inventory: string; candidate?: string; at?: string; yes?: boolean }) => {
      process.exitCode = await runSwitchover(opts.inventory, opts);
    });
  program
    .command('failover')
    .summary('promote a named member when the cluster has no healthy leader')
    .description(
      'Unplanned leader change for a cluster WITHOUT a healthy leader (e.g. the leader\'s machine is gone): ' +
        'asks for confirmation (or --yes), sends Patroni\'s POST /failover for the candidate, then waits like ' +
        'switchover (new leader primary, HAProxy routing to it, the old leader streaming again if it is reachable). ' +
        'If the cluster has a healthy leader it refuses and points to switchover (exit 2), unless the candidate ' +
        'is that leader already (exit 0). Exit 0 done, 1 failed, 2 bad input or refused.',
    )
    .requiredOption('-i, --inventory <file>', 'inventory YAML file')
    .requiredOption('--candidate <name>', 'the member to promote')
    .option('-y, --yes', 'do not ask for confirmation')
    .action(async (opts: { inventory: string; candidate: string; yes?: boolean }) => {
      process.exitCode = await runFailover(opts.inventory, opts);
    });
}
