// The interactive questions. Thin on purpose: each answer is checked with the same functions the
// flags use (answers.ts), and the result is a plain InitAnswers object.
import { existsSync } from 'node:fs';
import { checkbox, confirm, input, select } from '@inquirer/prompts';
import {
  DEFAULTS,
  PORT_LABELS,
  checkAddress,
  checkAptProxy,
  checkClientNetwork,
  checkClusterName,
  checkHostName,
  checkPort,
  checkPostgresVersion,
  checkRole,
  checkSharedPath,
  checkSshUser,
  splitList,
  type HostEntry,
  type InitAnswers,
  type Ports,
  type Repository,
} from './answers.js';
import { fingerprint, keyTypeOf, type HostProbe } from './hostkeys.js';

/** Where prompts read and write; tests pass streams, the CLI passes nothing (the terminal). */
export interface PromptContext {
  input?: NodeJS.ReadableStream;
  output?: NodeJS.WritableStream;
}

export interface WizardIO {
  context?: PromptContext;
  /** Prints a line for the user (next to the prompts). */
  say(text: string): void;
  /** Expands a leading ~ (for checking that the private key exists). */
  expandHome(path: string): string;
  /** The home directory (~/.ssh/id_* when no key is named). */
  home?: string;
}

const toInt = (v: string) => (/^\d+$/.test(v.trim()) ? Number(v.trim()) : NaN);

export const INTRO = [
  'pgha init writes three files for a new cluster: an inventory (hosts, their roles, ports and settings; plain',
  'YAML you can edit later), a secrets file with generated passwords (mode 0600, never shown) and, for the host',
  'keys you confirm, a known_hosts file. It asks for the cluster, its hosts and which of them run etcd, PostgreSQL',
  'and HAProxy, where backups live, and SSH access; Enter takes the default in brackets. Nothing is written before',
  'a summary of every answer and your go-ahead; Ctrl+C leaves no file behind.',
  '',
].join('\n');

export async function askAnswers(io: WizardIO): Promise<InitAnswers> {
  const ctx = io.context;
  io.say(INTRO);
  const clusterName = await input(
    { message: 'Cluster name', default: DEFAULTS.clusterName, validate: (v) => checkClusterName(v.trim()) ?? true },
    ctx,
  );
  const pgAnswer = await input(
    {
      message: "PostgreSQL major version (empty: the hosts' Debian release decides, 15 on Debian 12, 17 on Debian 13)",
      default: '',
      validate: (v) => (v.trim() === '' ? true : (checkPostgresVersion(toInt(v)) ?? true)),
    },
    ctx,
  );
  const postgresVersion = pgAnswer.trim() === '' ? DEFAULTS.postgresVersion : toInt(pgAnswer);

  io.say('Hosts: the database hosts (and a backup repository host, if it is to be one). At least 3.');
  const hosts: HostEntry[] = [];
  for (;;) {
    const n = hosts.length + 1;
    const name = (
      await input(
        {
          message: hosts.length >= 3 ? `Host ${n} name (empty when done)` : `Host ${n} name`,
          validate: (v) => {
            const t = v.trim();
            if (t === '') return hosts.length >= 3 ? true : 'at least 3 hosts are needed (etcd needs 3 members)';
            return checkHostName(t, hosts.map((h) => h.name)) ?? true;
          },
        },
        ctx,
      )
    ).trim();
    if (name === '') break;
    hosts.push({ name, address: await askAddress(ctx, name, hosts) });
  }

  const user = (await input({ message: 'SSH user', default: DEFAULTS.sshUser, validate: (v) => checkSshUser(v.trim()) ?? true }, ctx)).trim();
  const port = toInt(await input({ message: 'SSH port', default: String(DEFAULTS.sshPort), validate: (v) => checkPort(toInt(v)) ?? true }, ctx));
  const privateKey = (
    await input(
      {
        message: 'SSH private key (empty: the ssh-agent, then ~/.ssh/id_ed25519, id_ecdsa, id_rsa)',
        default: '',
        validate: (v) => (v.trim() === '' || existsSync(io.expandHome(v.trim())) ? true : `${v.trim()} does not exist`),
      },
      ctx,
    )
  ).trim();

  const names = hosts.map((h) => h.name);
  const firstThree = names.slice(0, 3);
  // Space toggles a host, a digit toggles that host, Enter accepts; the first three are checked.
  const askRole = async (role: 'etcd' | 'postgres' | 'haproxy', what: string, hint = '') =>
    checkbox(
      {
        message: `Hosts running ${what}${hint}`,
        choices: names.map((n) => ({ name: n, value: n, checked: firstThree.includes(n) })),
        validate: (chosen) => checkRole(role, chosen.map((c) => c.value), names) ?? true,
      },
      ctx,
    );
  const roles = {
    etcd: await askRole('etcd', 'etcd', ' (an odd number, at least 3)'),
    postgres: await askRole('postgres', 'PostgreSQL under Patroni'),
    haproxy: await askRole('haproxy', 'HAProxy', ' (the client entry points)'),
  };

  let repository: Repository;
  const kind = await select(
    {
      message: 'Where does the pgBackRest backup repository live?',
      choices: [
        { name: 'On a dedicated repository host (recommended)', value: 'host' },
        { name: 'On a shared path mounted on every database host', value: 'shared' },
      ],
    },
    ctx,
  );
  if (kind === 'host') {
    const candidates = names.filter((n) => !roles.postgres.includes(n));
    let repoHost = '';
    if (candidates.length > 0) {
      repoHost = await select(
        {
          message: 'Repository host',
          choices: [...candidates.map((c) => ({ name: c, value: c })), { name: 'Add a new host', value: '' }],
        },
        ctx,
      );
    }
    if (repoHost === '') {
      io.say('The repository host must not run PostgreSQL: add it as a new host.');
      repoHost = (
        await input({ message: 'Repository host name', validate: (v) => checkHostName(v.trim(), hosts.map((h) => h.name)) ?? true }, ctx)
      ).trim();
      hosts.push({ name: repoHost, address: await askAddress(ctx, repoHost, hosts) });
    }
    repository = { type: 'host', host: repoHost };
  } else {
    const path = await input(
      { message: 'Shared repository path (mounted on every database host)', default: DEFAULTS.sharedRepoPath, validate: (v) => checkSharedPath(v.trim()) ?? true },
      ctx,
    );
    repository = { type: 'shared', path: path.trim() };
  }

  const synchronousMode = await confirm(
    { message: 'Synchronous replication (a commit waits for a replica: no loss on failover, slower writes)?', default: false },
    ctx,
  );

  const ports: Ports = { ...DEFAULTS.ports };
  const shown = Object.entries(ports)
    .map(([k, v]) => `${PORT_LABELS[k as keyof Ports].replace(/ port$/, '')} ${v}`)
    .join(', ');
  if (!(await confirm({ message: `Use the default ports (${shown})?`, default: true }, ctx))) {
    for (const k of Object.keys(ports) as (keyof Ports)[]) {
      ports[k] = toInt(
        await input(
          {
            message: PORT_LABELS[k],
            default: String(ports[k]),
            validate: (v) => {
              const p = toInt(v);
              const clash = (Object.keys(ports) as (keyof Ports)[]).find((o) => o !== k && ports[o] === p);
              return checkPort(p) ?? (clash ? `${p} is already the ${PORT_LABELS[clash]}` : true);
            },
          },
          ctx,
        ),
      );
    }
  }

  const networks = splitList(
    await input(
      {
        message: 'Client networks allowed to connect to PostgreSQL, as pg_hba rules (CIDR, comma-separated; empty: none yet)',
        default: '',
        validate: (v) => splitList(v).map(checkClientNetwork).find((p) => p !== null) ?? true,
      },
      ctx,
    ),
  );

  const proxy = (
    await input(
      { message: 'APT proxy for the hosts (optional, e.g. http://10.0.10.1:3142)', default: '', validate: (v) => (v.trim() === '' ? true : (checkAptProxy(v.trim()) ?? true)) },
      ctx,
    )
  ).trim();

  return {
    clusterName: clusterName.trim(),
    postgresVersion,
    hosts,
    ssh: { user, port, privateKey: privateKey === '' ? null : privateKey },
    roles,
    repository,
    synchronousMode,
    ports,
    aptProxy: proxy === '' ? null : proxy,
    clientNetworks: networks,
  };
}

/** Every answer, for a last look before anything is written. */
export function summary(a: InitAnswers, test: HostTest): string {
  const list = (xs: string[]) => xs.join(', ');
  const lines = [
    '',
    'Summary:',
    `  cluster          ${a.clusterName}, PostgreSQL ${a.postgresVersion ?? "of the hosts' Debian release (15 on 12, 17 on 13)"}${a.synchronousMode ? ', synchronous replication' : ''}`,
    ...a.hosts.map((h, i) => `  ${i === 0 ? 'hosts           ' : '                '} ${h.name} ${h.address}`),
    `  etcd             ${list(a.roles.etcd)}`,
    `  postgres         ${list(a.roles.postgres)}`,
    `  haproxy          ${list(a.roles.haproxy)}`,
    `  backups          ${a.repository.type === 'host' ? `repository host ${a.repository.host}` : `shared path ${a.repository.path}`}`,
    `  ssh              ${a.ssh.user}, port ${a.ssh.port}, ${a.ssh.privateKey ?? 'the ssh-agent, then ~/.ssh/id_*'}`,
    `  ports            ${Object.entries(a.ports).map(([k, v]) => `${PORT_LABELS[k as keyof Ports].replace(/ port$/, '')} ${v}`).join(', ')}`,
    `  client networks  ${a.clientNetworks.length ? list(a.clientNetworks) : 'none (add pg_hba rules later)'}`,
    `  apt proxy        ${a.aptProxy ?? 'none'}`,
    `  host keys        ${test.tested ? `${test.keys.length} of ${a.hosts.length} confirmed${test.keys.length ? ` (${list(test.keys.map((k) => k.host))})` : ''}` : 'not checked (apply --accept-new-host-keys records them)'}`,
    '',
  ];
  return lines.join('\n');
}

/** The go-ahead; false: nothing is written. When SSH reached no host, the default is no. */
export async function askWrite(io: WizardIO, test: HostTest): Promise<boolean> {
  if (test.tested && test.reached.length === 0) {
    io.say('No host answered over SSH: check the addresses, the SSH port, and that sshd runs and is not firewalled.');
    return confirm({ message: 'Write the files anyway?', default: false }, io.context);
  }
  return confirm({ message: 'Write these files?', default: true }, io.context);
}

async function askAddress(ctx: PromptContext | undefined, name: string, hosts: HostEntry[]): Promise<string> {
  const a = await input(
    { message: `${name} address (IP or host name)`, validate: (v) => checkAddress(v.trim(), hosts.map((h) => h.address)) ?? true },
    ctx,
  );
  return a.trim();
}

export interface ConfirmedKey {
  host: string;
  address: string;
  port: number;
  key: Buffer;
}

/** The SSH test: whether it ran, which hosts answered, and the keys the user confirmed. */
export interface HostTest {
  tested: boolean;
  reached: string[];
  keys: ConfirmedKey[];
}

/** Offers to test SSH to every host; returns which answered and the host keys the user confirmed. */
export async function askHostKeys(io: WizardIO, a: InitAnswers, probe: HostProbe): Promise<HostTest> {
  const ctx = io.context;
  const go = await confirm(
    { message: 'Test SSH to each host now and confirm its host key? (otherwise `pgha apply --accept-new-host-keys` records them later)', default: true },
    ctx,
  );
  if (!go) return { tested: false, reached: [], keys: [] };
  const confirmed: ConfirmedKey[] = [];
  const reached: string[] = [];
  for (const h of a.hosts) {
    let key: Buffer;
    try {
      key = await probe.fetchKey(h.address, a.ssh.port);
    } catch (err) {
      io.say(`${h.name}: ${(err as Error).message}`);
      continue;
    }
    reached.push(h.name);
    io.say(`${h.name} (${h.address}:${a.ssh.port}) host key: ${keyTypeOf(key)} ${fingerprint(key)}`);
    const ok = await confirm(
      { message: `Is this ${h.name}'s host key? (compare with \`ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub\` on the host)`, default: false },
      ctx,
    );
    if (!ok) {
      io.say(`${h.name}: key not recorded.`);
      continue;
    }
    confirmed.push({ host: h.name, address: h.address, port: a.ssh.port, key });
    try {
      await probe.login({
        name: h.name,
        address: h.address,
        port: a.ssh.port,
        user: a.ssh.user,
        privateKeyPath: a.ssh.privateKey === null ? null : io.expandHome(a.ssh.privateKey),
        home: io.home,
        key,
      });
      io.say(`${h.name}: SSH login as ${a.ssh.user} and sudo work.`);
    } catch (err) {
      io.say(`SSH test failed: ${(err as Error).message}`);
    }
  }
  return { tested: true, reached, keys: confirmed };
}

/** Asks before replacing each existing file; false when the user declines any. */
export async function askOverwrite(io: WizardIO, existing: string[]): Promise<boolean> {
  for (const f of existing) {
    if (!(await confirm({ message: `${f} already exists. Overwrite it?`, default: false }, io.context))) return false;
  }
  return true;
}
