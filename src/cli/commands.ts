// Every subcommand: its flags and help text, and which flow runs it. Flows are imported only when
// their command runs (`pgha --version` and `pgha validate` load almost nothing). Each action
// builds the command's context (with its run log), calls the flow's `command(ctx, opts)` and
// closes what it opened.
import { Command, InvalidArgumentError, Option } from 'commander';
import { PghaError } from '../errors.js';
import { createContext, type CommandContext } from './context.js';
import type { RunLog } from './runlog.js';

// The flows' plain functions: `(ctx, opts) => exit code`.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Flow = (ctx: CommandContext, opts: any) => Promise<number>;

/** Commands that keep a run log by default (they change the cluster, or are how one checks it after a change). */
const LOGGED_BY_DEFAULT = new Set(['apply', 'verify', 'switchover', 'failover', 'backup', 'restore', 'replace', 'reinit', 'restart', 'upgrade', 'renew']);

/** Exit code of bad input per command, where it is not 2: `status` follows monitoring plugins (3: unknown). */
export const BAD_INPUT_EXIT: Record<string, number> = { status: 3 };

async function openLog(name: string, opts: { log?: string | boolean }, argv: string[]): Promise<RunLog | undefined> {
  if (opts.log === false || (opts.log === undefined && !LOGGED_BY_DEFAULT.has(name))) return undefined;
  const { RunLog, defaultLogPath } = await import('./runlog.js');
  // The default log exists only once a command ran on a host: a typo leaves no file behind.
  return typeof opts.log === 'string' ? RunLog.open(opts.log, argv) : RunLog.open(defaultLogPath(name), argv, { lazy: true });
}

function action(load: () => Promise<Flow>) {
  return async (opts: { inventory?: string; log?: string | boolean }, cmd: Command) => {
    // The command line goes into the log as given (pgha never takes a secret as an argument).
    const log = await openLog(cmd.name(), opts, process.argv.slice(2));
    const ctx = createContext({ inventoryFile: opts.inventory, log });
    let code = 1;
    try {
      code = await (await load())(ctx, opts);
      process.exitCode = code;
    } catch (err) {
      // The boundary (main.ts) prints it; the log keeps it too, and where the log is.
      if (log) {
        const lines = err instanceof PghaError ? [err.message, ...err.lines] : [err instanceof Error ? (err.stack ?? err.message) : String(err)];
        log.output('err', `pgha: ${lines.join('\n')}\n`);
        code = err instanceof PghaError ? err.exitCode : 70;
        if (log.written) process.stderr.write(`pgha: the log of this run is ${log.path}\n`);
      }
      throw err;
    } finally {
      await ctx.close();
      log?.close(code);
    }
  };
}

/** The action of a command with one argument, which the flow gets as opts[name]. */
function actionWithArgument(name: string, load: () => Promise<Flow>) {
  const run = action(load);
  return (value: string, opts: { inventory?: string }, cmd: Command) => run({ ...opts, [name]: value } as { inventory?: string }, cmd);
}

const collect = (v: string, prev: string[] = []) => [...prev, v];
/** A flag's whole number of seconds (at least 1); anything else is a usage error (exit 2). */
const seconds = (v: string) => {
  if (!/^[0-9]+$/.test(v) || Number(v) < 1) throw new InvalidArgumentError('expected a whole number of seconds, at least 1');
  return Number(v);
};
const DAY2_FLAGS = {
  timeout: ['--timeout <seconds>', 'how long each member may take to come back, streaming and caught up (default 300)'] as [string, string],
  maxTransactionAge: ['--max-transaction-age <seconds>', 'preflight: refuse while a transaction has been open longer than this on a member (default 60)'] as [string, string],
};
const INVENTORY: [string, string] = ['-i, --inventory <file>', 'inventory YAML file (default: $PGHA_INVENTORY, else ./inventory.yml)'];
const LOG: [string, string] = ['--log <file>', 'write the run log (every command run on the hosts, with its output; secrets masked) to FILE'];
const NO_LOG: [string, string] = ['--no-log', 'keep no run log'];
const LOG_DEFAULT = ' (default: a new file under ~/.local/state/pgha, or $PGHA_LOG_DIR)';

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
    .option('--ssh-key <file>', 'SSH private key (~ is your home directory; default: none written: the ssh-agent, then ~/.ssh/id_ed25519, id_ecdsa, id_rsa)')
    .option('--pg-version <n>', "PostgreSQL major version (default: none in the inventory, the hosts' Debian release decides: 15 on Debian 12, 17 on Debian 13)")
    .option('--etcd <names>', 'comma-separated etcd hosts, an odd number >= 3 (default: the first three hosts)')
    .option('--postgres <names>', 'comma-separated PostgreSQL/Patroni hosts (default: the first three hosts)')
    .option('--haproxy <names>', 'comma-separated HAProxy hosts (default: the first three hosts)')
    .option('--repo-host <name>', 'the dedicated pgBackRest repository host, one of --host, not a postgres host')
    .option('--repo-path <path>', 'instead of --repo-host: a shared path mounted on every database host')
    .option('--sync', 'synchronous replication (no acknowledged write lost on failover; slower writes)')
    .option('--apt-proxy <url>', 'HTTP proxy for apt on every host, e.g. http://10.0.10.1:3142')
    .option('--client-network <cidr>', 'a network whose clients may connect to PostgreSQL, written as a pg_hba rule (and one per HAProxy host outside it); repeat for more', collect)
    .option('--postgres-port <port>', 'PostgreSQL port', '5432')
    .option('--restapi-port <port>', 'Patroni REST API port', '8008')
    .option('--etcd-client-port <port>', 'etcd client port', '2379')
    .option('--etcd-peer-port <port>', 'etcd peer port', '2380')
    .option('--primary-port <port>', 'HAProxy read-write port (always the leader)', '5000')
    .option('--replicas-port <port>', 'HAProxy read-only port (the replicas)', '5001')
    .option('--stats-port <port>', 'HAProxy statistics page port', '7000')
    .option('-o, --output <file>', 'inventory file to write', 'inventory.yml')
    .option('--secrets <file>', 'secrets file to write (default: <inventory name>.secrets.yml beside it)')
    .option('--known-hosts <file>', 'known_hosts file the inventory uses (default: known_hosts beside it)')
    .option('--scan-host-keys', 'without the wizard: fetch every host key and record it (needs --yes: nobody checks them)')
    .option('-y, --yes', 'confirm --scan-host-keys')
    .option('--write-anyway', 'with --scan-host-keys: write the files even when no host answered over SSH')
    .option('-f, --force', 'replace an existing inventory or secrets file')
    .option('--non-interactive', 'never prompt, even on a terminal')
    .addHelpText(
      'after',
      '\nWithout the wizard, --name, --host (3 or more) and --repo-host or --repo-path are required.\n' +
        'Host keys are not fetched unless --scan-host-keys --yes: `pgha apply --accept-new-host-keys`\n' +
        'records them on first contact instead.\n\n' +
        'Example:\n' +
        '  pgha init --name main --host pg1=10.0.10.11 --host pg2=10.0.10.12 --host pg3=10.0.10.13 \\\n' +
        '    --host backup1=10.0.10.20 --repo-host backup1 --client-network 10.0.20.0/24 --output inventory.yml',
    )
    .action(action(async () => (await import('../flows/init/command.js')).init));

  program
    .command('validate')
    .summary('check an inventory and its secrets file (contacts no host)')
    .description(
      'Check an inventory and its secrets file without contacting any host. Prints "FILE: ok" and exits 0, ' +
        'or prints every problem at once, one per line as FILE:LINE:COL: path.to.field: problem, and exits 2. ' +
        'Without its secrets file (a fresh clone\'s inventories/example.yml) the inventory is checked alone, with a note.',
    )
    .option(...INVENTORY)
    .option('--json', 'print one JSON document: {"file", "ok", "cluster", ..., "problems": [{"file", "line", "column", "message"}]}')
    .action(action(async () => (await import('../flows/validate/command.js')).validate));

  program
    .command('render')
    .summary('write every configuration file apply would push, into a local directory')
    .description(
      'Render every configuration file pgha writes on the hosts (etcd, Patroni, HAProxy, pgBackRest, ' +
        'backup timers, apt settings) into DIR/HOST/<absolute path>, without contacting any host. ' +
        'Passwords are replaced by ******** unless --show-secrets.',
    )
    .option(...INVENTORY)
    .requiredOption('-o, --output <dir>', 'directory to write into (created if missing)')
    .option('--host <name>', 'only this host')
    .option('--release <name>', "the hosts' Debian release: bookworm (12) or trixie (13); it picks the default PostgreSQL major and Patroni", 'bookworm')
    .option(
      '--patroni-version <version>',
      "the Patroni version the hosts run (default: the release's, 3.0.2 or 4.0.7); below 3.0.3 the DCS is etcd's v2 API (etcd:), else etcd3:; from 3.2 on ttl is at least 20 s",
    )
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
    .summary('converge the hosts into the verified cluster the inventory describes (also hosts added or removed)')
    .description(
      "Converge the inventory's hosts (Debian 12, sshd and sudo only) into a verified HA cluster: packages, " +
        'etcd, PostgreSQL under Patroni, HAProxy and pgBackRest, in that order, each behind a health gate, ' +
        'then verify. Every step reads the host first and acts only on a difference: a second run changes ' +
        'nothing. On a running cluster, hosts added to or removed from a role join or leave it: the live cluster ' +
        'is read first and the plan printed (etcd members one at a time, as learners first; a leader that leaves ' +
        'is switched away from first; a replica that leaves is stopped, its member key and replication slot gone). ' +
        'A change that would lose etcd quorum is refused before any host is touched (exit 2, with the reason and a ' +
        'safe order). Exit 0 when converged and verified, 1 on any failure (the recap names the host), 2 on bad input.',
    )
    .option(...INVENTORY)
    .option('--check', 'show the plan and every change apply would make (file diffs with secrets masked, packages, services) and change nothing')
    .option('-v, --verbose', 'show every step and every command run on the hosts (secrets masked)')
    .option('--accept-new-host-keys', 'record the host keys of hosts not yet in known_hosts (like ssh accept-new); a changed key is always refused')
    .option('-l, --limit <hosts>', "only these hosts' steps run (comma-separated names); the others are still read by the health gates and verify")
    .option('--json', 'print the recap as one JSON document on stdout (progress goes to stderr)')
    .option('--purge', "a PostgreSQL host that leaves roles.postgres loses its data directory too (by default it stays on that host's disk)")
    .option('--restart-pending', 'then restart the members with a pending restart, as pgha restart does (replicas, a switchover, the old leader); the flag is the go-ahead, apply does not ask')
    .option(...DAY2_FLAGS.timeout, seconds)
    .option(...DAY2_FLAGS.maxTransactionAge, seconds)
    .option(LOG[0], LOG[1] + LOG_DEFAULT)
    .option(...NO_LOG)
    .addHelpText(
      'after',
      '\nWith --limit, the skipped hosts are named at each stage; the cluster-wide gates (etcd healthy, a Patroni\n' +
        'leader, replicas streaming, HAProxy routing) and verify still read every host, so every host must be reachable.\n' +
        'SSH: keys from the ssh-agent, ssh.private_key or ~/.ssh/config; an encrypted key\'s passphrase is asked once on a\n' +
        'terminal, or taken from $PGHA_SSH_PASSPHRASE; jump hosts from ssh.jump or ProxyJump.',
    )
    .action(action(async () => (await import('../flows/apply/command.js')).apply));

  program
    .command('replace')
    .summary('bring back a host whose machine was rebuilt (same name and address, empty disk, new host key)')
    .argument('<host>', 'the inventory host whose machine was rebuilt')
    .description(
      'For a machine rebuilt under the same name and address with an empty disk: shows the SHA256 fingerprint of ' +
        'the host key it offers now and asks (or --yes; without a terminal --yes is required), records it in ' +
        "known_hosts, then applies the inventory with that host as a new member: its old etcd member removed and " +
        'a new one added (learner, then promoted), everything installed, PostgreSQL joining as a replica (cloned ' +
        "from the pgBackRest repository), HAProxy routing. The other hosts' data is never touched. For the backup " +
        'repository host the repository is created again (new stanza data, a new full backup) and the output names ' +
        'the backups that were lost with the old disk. Refused for the running leader. Exit 0 when the cluster ' +
        'verifies, 1 on a failure, 2 on bad input or a refusal (nothing changed).',
    )
    .option(...INVENTORY)
    .option('-y, --yes', 'record the new host key and go ahead without asking (check the fingerprint shown on the machine first)')
    .option('-v, --verbose', 'show every step and every command run on the hosts (secrets masked)')
    .option(LOG[0], LOG[1] + LOG_DEFAULT)
    .option(...NO_LOG)
    .action(actionWithArgument('host', async () => (await import('../flows/replace/command.js')).replace));

  program
    .command('reinit')
    .summary("rebuild one replica's data from scratch (Patroni's reinitialize)")
    .argument('<member>', 'the replica to rebuild')
    .description(
      "Rebuild a replica's data: Patroni's POST /reinitialize empties its data directory and copies it again " +
        '(from the pgBackRest repository, else pg_basebackup from the leader); pgha waits until it streams from the ' +
        'leader again, printing each step with its time. Refused on the leader (switch over first) and without a ' +
        'running leader. Asks for confirmation (or --yes; without a terminal --yes is required). Exit 0 when it ' +
        'streams again, 1 on a failure, 2 on bad input or a refusal (nothing changed).',
    )
    .option(...INVENTORY)
    .option('-y, --yes', 'do not ask for confirmation')
    .option(LOG[0], LOG[1] + LOG_DEFAULT)
    .option(...NO_LOG)
    .action(actionWithArgument('member', async () => (await import('../flows/reinit/command.js')).reinit));

  program
    .command('verify')
    .summary('check that the running cluster does its job (read-only)')
    .description(
      'Check the running cluster end to end from its hosts: etcd healthy with one leader; exactly one Patroni ' +
        'leader and every replica streaming within maximum_lag_on_failover; through each HAProxy host a write ' +
        'and a read on the leader (primary port) and a replica in recovery (replicas port); pgBackRest check ' +
        'passes and its stanza status is ok. Exit 0 when all pass, 1 otherwise.',
    )
    .option(...INVENTORY)
    .option('--json', 'print one JSON document: {"ok", "checks": [{"component", "host", "ok", "detail"}], "elapsed_ms"}')
    .option(LOG[0], LOG[1] + LOG_DEFAULT)
    .option(...NO_LOG)
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
        'unreachable; status still answers. Exit codes as monitoring plugins expect: 0 healthy, 1 degraded, 2 down, ' +
        '3 unknown (bad input, no inventory).',
    )
    .option(...INVENTORY)
    .option('--json', 'print one JSON document (format in the README) instead of the table')
    .option('-w, --watch', 'refresh every 2 s until Ctrl+C')
    .option('-v, --verbose', 'show every command run on the hosts (secrets masked)')
    .option(...LOG)
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
    .option(...INVENTORY)
    .option('--candidate <name>', 'the member to promote (default: Patroni picks a healthy replica)')
    .option('--at <time>', 'schedule it: ISO 8601 time with a timezone, in the future (e.g. 2030-01-31T02:00:00+01:00)')
    .option('-y, --yes', 'do not ask for confirmation')
    .option(LOG[0], LOG[1] + LOG_DEFAULT)
    .option(...NO_LOG)
    .action(action(async () => (await import('../flows/switchover/command.js')).switchover));

  program
    .command('restart')
    .summary('rolling restart of the members with a pending restart (replicas, a switchover, the old leader)')
    .description(
      "Restart PostgreSQL where Patroni marks a restart pending (a changed setting such as max_connections), without " +
        'a write outage beyond one switchover: the replicas one at a time, each streaming again and caught up before the ' +
        'next; then a switchover to a caught-up replica (with synchronous_mode, the synchronous standby); then the old ' +
        "leader, unless its demotion already restarted it. Preflight first, changing nothing when it fails: a running " +
        'leader, every member streaming within maximum_lag_on_failover with its replay not paused, no transaction open ' +
        'longer than --max-transaction-age, a synchronous standby in synchronous mode. A member that does not come back ' +
        'stops the roll with the reason and leaves the rest untouched. Asks for confirmation (or --yes; without a terminal ' +
        '--yes is required). Exit 0 done (or nothing pending), 1 refused or failed, 2 bad input.',
    )
    .option(...INVENTORY)
    .option('--check', 'show the order and the preflight result, change nothing (exit 1 when the preflight would refuse)')
    .option('--all', 'restart every member, pending or not')
    .option(...DAY2_FLAGS.timeout, seconds)
    .option(...DAY2_FLAGS.maxTransactionAge, seconds)
    .option('-y, --yes', 'do not ask for confirmation')
    .option(LOG[0], LOG[1] + LOG_DEFAULT)
    .option(...NO_LOG)
    .action(action(async () => (await import('../flows/restart/command.js')).restart));

  program
    .command('upgrade')
    .summary("minor upgrade of the stack's packages, one member at a time, behind a preflight")
    .description(
      "Upgrade the packages of PostgreSQL, Patroni, etcd, HAProxy and pgBackRest (with the installed packages built from " +
        'the same sources, such as libpq5) to the versions the inventory pins (packages.versions) or else to the newest ' +
        "the hosts' apt sources offer; --all also everything apt-get upgrade would. Preflight first, touching nothing when " +
        'it fails: a running leader, every member streaming within maximum_lag_on_failover with its replay not paused, no ' +
        'transaction open longer than --max-transaction-age, the last backup and WAL archiving healthy, a synchronous ' +
        'standby in synchronous mode, and every pinned version offered (pgha never downgrades). Then apt-get update and ' +
        'the plan. Order: etcd members one at a time with etcd healthy between; HAProxy hosts one at a time; Patroni under ' +
        'maintenance mode (PostgreSQL keeps running); PostgreSQL replicas one at a time, then a switchover, then the old ' +
        'leader, each restarted and back on the new version before the next; the rest. Prints the versions before and ' +
        'after on each host. Asks for confirmation (or --yes; without a terminal --yes is required). ' +
        'Exit 0 upgraded and verified (or nothing to do), 1 refused or failed, 2 bad input.',
    )
    .option(...INVENTORY)
    .option('--check', "list what would change on each host and the order, with the preflight's result; installs nothing (it does refresh apt's package lists)")
    .option('--all', 'also upgrade every other package apt-get upgrade would (a library PostgreSQL loads takes effect with its restart)')
    .option(...DAY2_FLAGS.timeout, seconds)
    .option(...DAY2_FLAGS.maxTransactionAge, seconds)
    .option('-v, --verbose', 'show every command run on the hosts (secrets masked)')
    .option('-y, --yes', 'do not ask for confirmation')
    .option(LOG[0], LOG[1] + LOG_DEFAULT)
    .option(...NO_LOG)
    .action(action(async () => (await import('../flows/upgrade/command.js')).upgrade));

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
    .option(...INVENTORY)
    .requiredOption('--candidate <name>', 'the member to promote')
    .option('-y, --yes', 'do not ask for confirmation')
    .option(LOG[0], LOG[1] + LOG_DEFAULT)
    .option(...NO_LOG)
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
    .option(...INVENTORY)
    .addOption(new Option('--type <type>', 'backup type').choices(['full', 'diff', 'incr']).default('full'))
    .option(LOG[0], LOG[1] + LOG_DEFAULT)
    .option(...NO_LOG)
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
    .option(...INVENTORY)
    .option('--json', 'one JSON document, snake_case keys (times in ISO 8601 UTC, sizes in bytes; format in the README)')
    .option(...LOG)
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
    .option(...INVENTORY)
    .option('--to <time>', 'target time with a UTC offset, e.g. "2024-05-01 10:11:12.345+00" (as `select now()` prints it)')
    .option('--backup <label>', 'restore to the end of this backup (a label from pgha backups)')
    .option('-y, --yes', 'do not ask for confirmation')
    .option(LOG[0], LOG[1] + LOG_DEFAULT)
    .option(...NO_LOG)
    .action(action(async () => (await import('../flows/backup/command.js')).restore));

  program
    .command('completion')
    .summary('print a shell completion script (bash or zsh)')
    .description(
      'Print a completion script for pgha\'s commands and flags. bash: add `source <(pgha completion bash)` to ~/.bashrc. ' +
        'zsh: `pgha completion zsh > "${fpath[1]}/_pgha"` (then start a new shell), or `source <(pgha completion zsh)` in ~/.zshrc.',
    )
    .argument('<shell>', 'bash or zsh')
    .action(async (shell: string) => {
      const { completionScript } = await import('./completion.js');
      process.stdout.write(completionScript(program, shell));
    });

  const tls = program
    .command('tls')
    .summary("the cluster's TLS: the CA for clients, renewing certificates and the CA")
    .description(
      'TLS is on by default on every link (etcd clients and peers with client certificates, Patroni\'s REST API, ' +
        'PostgreSQL, HAProxy\'s checks). pgha keeps a cluster CA beside the secrets file (<cluster>.ca.crt and ' +
        '<cluster>.ca.key, mode 0600: back them up with the secrets file) and a certificate per host and service, ' +
        'made from a key generated on the host itself.',
    );
  tls
    .command('ca')
    .summary("print the cluster CA's certificate (PEM) for clients")
    .description(
      "Print the cluster CA's certificate (PEM) on stdout, for clients to verify the servers: " +
        "`pgha tls ca -i inventory.yml > ca.crt`, then `psql 'host=HAPROXY port=5000 sslmode=verify-full sslrootcert=ca.crt ...'`. " +
        'During a CA rotation both CAs are printed. Contacts no host. Exit 0, or 2 when there is no CA yet.',
    )
    .option(...INVENTORY)
    .action(action(async () => (await import('../flows/tls/command.js')).ca));
  tls
    .command('renew')
    .summary('re-issue every host certificate (new keys), or with --ca rotate the cluster CA')
    .description(
      'Re-issue every host certificate from a new key made on its host, signed by the cluster CA; each service ' +
        'picks it up one host at a time, the Patroni leader last (PostgreSQL and Patroni reload, nothing restarts). ' +
        'With --ca: rotate the CA itself: a new CA is made beside the old one, every host trusts both, every ' +
        'certificate is re-issued by the new CA, then the old CA is dropped and the new one takes its files (etcd ' +
        'restarts one member at a time to read its CA bundle). Clients then need the new CA (pgha tls ca). An ' +
        'interrupted rotation is finished by running it again. Then verify. Exit 0 done and verified, 1 failed, 2 bad input.',
    )
    .option(...INVENTORY)
    .option('--ca', 'rotate the cluster CA (through a period where both CAs are trusted)')
    .option('--check', 'show what would change and change nothing')
    .option('-v, --verbose', 'show every step and every command run on the hosts (secrets masked)')
    .option(LOG[0], LOG[1] + LOG_DEFAULT)
    .option(...NO_LOG)
    .action(action(async () => (await import('../flows/tls/command.js')).renew));
}
