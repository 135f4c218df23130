// `pgha apply` and `pgha verify`.
import { Command } from 'commander';
import { runApply, runVerify } from '../../apply/apply.js';

export function registerApply(program: Command): void {
  program
    .command('apply')
    .summary('converge the hosts into the verified cluster the inventory describes')
    .description(
      'Converge the inventory\'s hosts (Debian 12, sshd and sudo only) into a verified HA cluster: packages, ' +
        'etcd, PostgreSQL under Patroni, HAProxy and pgBackRest, in that order, each behind a health gate, ' +
        'then verify. Every step reads the host first and acts only on a difference: a second run changes ' +
        'nothing. Exit 0 when converged and verified, 1 on any failure (the recap names the host), 2 on bad input.',
    )
    .requiredOption('-i, --inventory <file>', 'inventory YAML file')
    .option('--check', 'show every change apply would make (file diffs with secrets masked, packages, services) and change nothing')
    .option('-v, --verbose', 'show every step and every command run on the hosts (secrets masked)')
    .option('--accept-new-host-keys', 'record the host keys of hosts not yet in known_hosts (like ssh accept-new); a changed key is always refused')
    .action(async (opts: { inventory: string; check?: boolean; verbose?: boolean; acceptNewHostKeys?: boolean }) => {
      process.exitCode = await runApply(opts.inventory, opts);
    });
  program
    .command('verify')
    .summary('check that the running cluster does its job (read-only)')
    .description(
      'Check the running cluster end to end from its hosts: etcd healthy with one leader; exactly one Patroni ' +
        'leader and every replica streaming within maximum_lag_on_failover; through each HAProxy host a write ' +
        'and a read on the leader (primary port) and a replica in recovery (replicas port); pgBackRest check ' +
        'passes and its stanza status is ok. Exit 0 when all pass, 1 otherwise.',
    )
    .requiredOption('-i, --inventory <file>', 'inventory YAML file')
    .action(async (opts: { inventory: string }) => {
      process.exitCode = await runVerify(opts.inventory);
    });
}
