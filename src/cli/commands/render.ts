// `pgha render`: writes every file apply would push, for review, without contacting any host.
import { Command } from 'commander';
import { runRender, type RenderFlags } from '../../render/command.js';

export function registerRender(program: Command): void {
  program
    .command('render')
    .summary('write every configuration file apply would push, into a local directory')
    .description(
      'Render every configuration file pgha writes on the hosts (etcd, Patroni, HAProxy, pgBackRest, ' +
        'backup timers, apt settings) into DIR/HOST/<absolute path>, without contacting any host. ' +
        'Passwords are replaced by ******** unless --show-secrets.',
    )
    .requiredOption('-i, --inventory <file>', 'inventory YAML file')
    .requiredOption('-o, --output <dir>', 'directory to write into (created if missing)')
    .option('--host <name>', 'only this host')
    .option(
      '--patroni-version <version>',
      "the Patroni version the hosts run; below 3.0.3 the DCS is etcd's v2 API (etcd:), else etcd3:",
      '3.0.2',
    )
    .option('--show-secrets', 'write the real passwords (secret files are then mode 0600)')
    .action(async (opts: RenderFlags) => {
      await runRender(opts, (t) => process.stdout.write(t));
    });
}
