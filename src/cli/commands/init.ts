// `pgha init`: writes a new inventory, its secrets file and (optionally) known_hosts.
import { Command } from 'commander';
import { runInit, type InitFlags } from '../../init/index.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

export function registerInit(program: Command): void {
  program
    .command('init')
    .summary('write a new inventory and secrets file (a wizard, or from flags)')
    .description(
      'Write a new inventory, a secrets file with generated passwords (mode 0600) and, when host keys ' +
        'are confirmed, a known_hosts file. On a terminal without --name/--host it asks (a wizard); ' +
        'otherwise it takes everything from flags and names every missing flag at once (exit 2). ' +
        'Nothing is written until the result validates; existing files are never replaced without ' +
        'asking (or --force). Ctrl+C leaves no files behind (exit 130).',
    )
    .option('--name <name>', 'cluster name (letters, digits, - and _) [required without the wizard]')
    .option('--host <name=address>', 'a host and its IP address or DNS name; repeat for each host [required, 3+]', collect)
    .option('--ssh-user <user>', 'SSH user (root, or a user with passwordless sudo)', 'admin')
    .option('--ssh-port <port>', 'SSH port', '22')
    .option('--ssh-key <file>', 'SSH private key (~ is your home directory)', '~/.ssh/id_ed25519')
    .option('--pg-version <n>', 'PostgreSQL major version (15 is what Debian 12 ships)', '15')
    .option('--etcd <names>', 'comma-separated etcd hosts, an odd number >= 3 (default: the first three hosts)')
    .option('--postgres <names>', 'comma-separated PostgreSQL/Patroni hosts (default: the first three hosts)')
    .option('--haproxy <names>', 'comma-separated HAProxy hosts (default: the first three hosts)')
    .option('--repo-host <name>', 'the dedicated pgBackRest repository host, one of --host, not a postgres host')
    .option('--repo-path <path>', 'instead of --repo-host: a shared path mounted on every database host')
    .option('--sync', 'synchronous replication (no acknowledged write lost on failover; slower writes)')
    .option('--apt-proxy <url>', 'HTTP proxy for apt on every host, e.g. http://10.0.10.1:3142')
    .option('-o, --output <file>', 'inventory file to write', 'inventory.yml')
    .option('--secrets <file>', 'secrets file to write (default: <inventory name>.secrets.yml beside it)')
    .option('--known-hosts <file>', 'known_hosts file the inventory uses (default: known_hosts beside it)')
    .option('--scan-host-keys', 'without the wizard: fetch every host key and record it (needs --yes: nobody checks them)')
    .option('-y, --yes', 'confirm --scan-host-keys')
    .option('-f, --force', 'replace an existing inventory or secrets file')
    .option('--non-interactive', 'never prompt, even on a terminal')
    .addHelpText(
      'after',
      '\nWithout the wizard, --name, --host (3 or more) and --repo-host or --repo-path are required.\n' +
        'Host keys are not fetched unless --scan-host-keys --yes: `pgha apply --accept-new-host-keys`\n' +
        'records them on first contact instead.\n\n' +
        'Example:\n' +
        '  pgha init --name main --host pg1=10.0.10.11 --host pg2=10.0.10.12 --host pg3=10.0.10.13 \\\n' +
        '    --host backup1=10.0.10.20 --repo-host backup1 --output inventory.yml',
    )
    .action(async (opts: InitFlags) => {
      await runInit(opts, {
        tty: Boolean(process.stdin.isTTY && process.stdout.isTTY),
        out: (t) => process.stdout.write(t),
      });
    });
}
