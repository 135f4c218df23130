// Every subcommand: its flags and help text, and which flow runs it. Flows are imported only when
// their command runs (`pgha --version` and `pgha validate` load almost nothing). Each action
// builds the command's context, calls the flow's `command(ctx, opts)` and closes what it opened.
import { Command, Option } from 'commander';
import { createContext, type CommandContext } from './context.js';

// The flows' plain functions: `(ctx, opts) => exit code`.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Flow = (ctx: CommandContext, opts: any) => Promise<number>;

function action(load: () => Promise<Flow>) {
  return async (opts: { inventory?: string }) => {
    const ctx = createContext({ inventoryFile: opts.inventory });
    try {
      process.exitCode = await (await load())(ctx, opts);
    } finally {
      await ctx.close();
    }
  };
}

const collect = (v: string, prev: string[] = []) => [...prev, v];
const INVENTORY: [string, string] = ['-i, --inventory <file>', 'inventory YAML file'];

export function registerCommands(program: Command): void {
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
    .action(action(async () => (await import('../flows/init/command.js')).init));

  program
    .command('validate')
    .summary('check an inventory and its secrets file (contacts no host)')
    .description(
      'Check an inventory and its secrets file without contacting any host. Prints "FILE: ok" and exits 0, ' +
        'or prints every problem at once, one per line as FILE:LINE:COL: path.to.field: problem, and exits 2.',
    )
    .requiredOption(...INVENTORY)
    .action(action(async () => (await import('../flows/validate/command.js')).validate));

  program
    .command('render')
    .summary('write every configuration file apply would push, into a local directory')
    .description(
      'Render every configuration file pgha writes on the hosts (etcd, Patroni, HAProxy, pgBackRest, ' +
        'backup timers, apt settings) into DIR/HOST/<absolute path>, without contacting any host. ' +
        'Passwords are replaced by ******** unless --show-secrets.',
    )
    .requiredOption(...INVENTORY)
    .requiredOption('-o, --output <dir>', 'directory to write into (created if missing)')
    .option('--host <name>', 'only this host')
    .option('--patroni-version <version>', "the Patroni version the hosts run; below 3.0.3 the DCS is etcd's v2 API (etcd:), else etcd3:", '3.0.2')
    .option('--show-secrets', 'write the real passwords (secret files are then mode 0600)')
    .action(action(async () => (await import('../flows/render/command.js')).render));

  program
    .command('schema')
    .summary("print the inventory's JSON Schema")
    .description(
      "Print the inventory's JSON Schema (draft 2020-12), generated from the same definitions `pgha validate` " +
        'uses, with every default. Editors use it for completion and checks (see the $schema comment in ' +
        'inventories/example.yml).',
    )
    .action(action(async () => (await import('../flows/validate/command.js')).schema));

  program
    .command('apply')
    .summary('converge the hosts into the verified cluster the inventory describes')
    .description(
      "Converge the inventory's hosts (Debian 12, sshd and sudo only) into a verified HA cluster: packages, " +
        'etcd, PostgreSQL under Patroni, HAProxy and pgBackRest, in that order, each behind a health gate, ' +
        'then verify. Every step reads the host first and acts only on a difference: a second run changes ' +
        'nothing. Exit 0 when converged and verified, 1 on any failure (the recap names the host), 2 on bad input.',
    )
    .requiredOption(...INVENTORY)
    .option('--check', 'show every change apply would make (file diffs with secrets masked, packages, services) and change nothing')
    .option('-v, --verbose', 'show every step and every command run on the hosts (secrets masked)')
    .option('--accept-new-host-keys', 'record the host keys of hosts not yet in known_hosts (like ssh accept-new); a changed key is always refused')
    .action(action(async () => (await import('../flows/apply/command.js')).apply));

  program
    .command('verify')
    .summary('check that the running cluster does its job (read-only)')
    .description(
      'Check the running cluster end to end from its hosts: etcd healthy with one leader; exactly one Patroni ' +
        'leader and every replica streaming within maximum_lag_on_failover; through each HAProxy host a write ' +
        'and a read on the leader (primary port) and a replica in recovery (replicas port); pgBackRest check ' +
        'passes and its stanza status is ok. Exit 0 when all pass, 1 otherwise.',
    )
    .requiredOption(...INVENTORY)
    .action(action(async () => (await import('../flows/apply/command.js')).verify));

  program
    .command('prometheus')
    .summary("write the cluster's Prometheus scrape config and alert rules (monitoring: true)")
    .description(
      'Write pgha-CLUSTER-scrape.yml (scrape_configs for Patroni, etcd, HAProxy, postgres_exporter and ' +
        'node_exporter on every host) and pgha-CLUSTER-rules.yml (alerts: no leader, replication lag, failsafe ' +
        'mode active, WAL archiving failing, backups older than the default schedule, etcd without a leader, ' +
        'an endpoint down) into a directory, for the operator to load into Prometheus. Contacts no host.',
    )
    .requiredOption(...INVENTORY)
    .requiredOption('-o, --output <dir>', 'directory to write the two files into')
    .action(action(async () => (await import('../flows/prometheus/command.js')).prometheus));

  const notify = program.command('notify').summary('failover notifications (notifications.webhooks)');
  notify
    .command('test')
    .summary('send a test event to every webhook, from a database host')
    .description(
      'Send a test event ({"event": "test", cluster, member, timeline, time}) from one database host to every ' +
        'webhook of notifications.webhooks, with the notifier Patroni runs on each role change, one try each. ' +
        "Prints each webhook's outcome (its scheme, host and port only: a URL's path may hold a token). " +
        'Exit 0 when every webhook answered 2xx, 1 otherwise, 2 on bad input.',
    )
    .requiredOption(...INVENTORY)
    .option('--member <name>', 'the database host that sends it (default: the first postgres host)')
    .option('-v, --verbose', 'show every command run on the hosts (secrets masked)')
    .action(action(async () => (await import('../flows/notify/command.js')).notifyTest));

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
    .requiredOption(...INVENTORY)
    .option('--json', 'print one JSON document (format in the README) instead of the table')
    .option('-w, --watch', 'refresh every 2 s until Ctrl+C')
    .option('-v, --verbose', 'show every command run on the hosts (secrets masked)')
    .action(action(async () => (await import('../flows/status/command.js')).status));

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
    .requiredOption(...INVENTORY)
    .option('--candidate <name>', 'the member to promote (default: Patroni picks a healthy replica)')
    .option('--at <time>', 'schedule it: ISO 8601 time with a timezone, in the future (e.g. 2030-01-31T02:00:00+01:00)')
    .option('-y, --yes', 'do not ask for confirmation')
    .action(action(async () => (await import('../flows/switchover/command.js')).switchover));

  program
    .command('failover')
    .summary('promote a named member when the cluster has no healthy leader')
    .description(
      "Unplanned leader change for a cluster WITHOUT a healthy leader (e.g. the leader's machine is gone): " +
        "asks for confirmation (or --yes), sends Patroni's POST /failover for the candidate, then waits like " +
        'switchover (new leader primary, HAProxy routing to it, the old leader streaming again if it is reachable). ' +
        'If the cluster has a healthy leader it refuses and points to switchover (exit 2), unless the candidate ' +
        'is that leader already (exit 0). Exit 0 done, 1 failed, 2 bad input or refused.',
    )
    .requiredOption(...INVENTORY)
    .requiredOption('--candidate <name>', 'the member to promote')
    .option('-y, --yes', 'do not ask for confirmation')
    .action(action(async () => (await import('../flows/switchover/command.js')).failover));

  program
    .command('backup')
    .summary('take a pgBackRest backup now')
    .description(
      'Take a pgBackRest backup of the cluster now, on the repository host as user pgbackrest (where the ' +
        "scheduled backups run), from whichever member leads. Shows pgBackRest's progress, then the new " +
        "backup's label, type, size, size in the repository and duration. The default type is full: a backup " +
        'that restores on its own. diff (changes since the last full) and incr (since the last backup) need a ' +
        'prior full backup. Exit 0 when the backup is in the repository, 1 when it failed, 2 on bad input.',
    )
    .requiredOption(...INVENTORY)
    .addOption(new Option('--type <type>', 'backup type').choices(['full', 'diff', 'incr']).default('full'))
    .action(action(async () => (await import('../flows/backup/command.js')).backup));

  program
    .command('backups')
    .summary('list the backups in the repository and the stanza status')
    .description(
      'List the backups in the pgBackRest repository (label, type, start and stop time, duration, size, size ' +
        "in the repository, first and last WAL segment), the stanza status (pgBackRest's status code and " +
        "message: its exit code is 0 even for a broken stanza) and the range of archived WAL. " +
        'Exit 0 when the stanza status is ok, 1 otherwise.',
    )
    .requiredOption(...INVENTORY)
    .option('--json', 'machine-readable output (times in ISO 8601 UTC, sizes in bytes)')
    .action(action(async () => (await import('../flows/backup/command.js')).backups));

  program
    .command('restore')
    .summary('restore the whole cluster to a point in time or to a backup (destructive)')
    .description(
      'Restore the whole cluster to a point in time (--to) or to the end of one backup (--backup). DESTRUCTIVE: ' +
        "every member's data is replaced and writes after the target are lost. First it checks the target " +
        'against the repository (not before the end of the earliest backup, not in the future) and shows the ' +
        'plan; nothing is stopped before you confirm (--yes, required without a terminal). Then: Patroni stopped ' +
        "on every member, the cluster's keys removed from etcd, the previous leader (or the first postgres " +
        'host) restored by pgBackRest and recovered until the target is reached and it is promoted, Patroni ' +
        'started on it (it leads on a new timeline), a full backup on that timeline, the other members rebuilt ' +
        'from the repository, and verify. Each step is shown with its duration. ' +
        'Exit 0 when restored and verified, 1 on a failure, 2 on bad input (nothing changed).',
    )
    .requiredOption(...INVENTORY)
    .option('--to <time>', 'target time with a UTC offset, e.g. "2024-05-01 10:11:12.345+00" (as `select now()` prints it)')
    .option('--backup <label>', 'restore to the end of this backup (a label from pgha backups)')
    .option('--yes', 'do not ask for confirmation')
    .action(action(async () => (await import('../flows/backup/command.js')).restore));
}
