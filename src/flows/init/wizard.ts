// The interactive questions. Thin on purpose: each answer is checked with the same functions the
// flags use (answers.ts), and the result is a plain InitAnswers object.
import { existsSync } from 'node:fs';
import { confirm, input, select } from '@inquirer/prompts';
import {
  DEFAULTS,
  PORT_LABELS,
  checkAddress,
  checkAptProxy,
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
}

const toInt = (v: string) => (/^\d+$/.test(v.trim()) ? Number(v.trim()) : NaN);

export async function askAnswers(io: WizardIO): Promise<InitAnswers> {
  const ctx = io.context;
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
        message: 'SSH private key',
        default: DEFAULTS.privateKey,
        validate: (v) => (existsSync(io.expandHome(v.trim())) ? true : `${v.trim()} does not exist`),
      },
      ctx,
    )
  ).trim();

  const names = hosts.map((h) => h.name);
  const firstThree = names.slice(0, 3).join(',');
  const askRole = async (role: 'etcd' | 'postgres' | 'haproxy', what: string, hint = '') =>
    splitList(
      await input(
        { message: `Hosts running ${what}, comma-separated${hint}`, default: firstThree, validate: (v) => checkRole(role, splitList(v), names) ?? true },
        ctx,
      ),
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
    ssh: { user, port, privateKey },
    roles,
    repository,
    synchronousMode,
    ports,
    aptProxy: proxy === '' ? null : proxy,
  };
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

/** Offers to test SSH to every host; returns the host keys the user confirmed. */
export async function askHostKeys(io: WizardIO, a: InitAnswers, probe: HostProbe): Promise<ConfirmedKey[]> {
  const ctx = io.context;
  const go = await confirm(
    { message: 'Test SSH to each host now and confirm its host key? (otherwise `pgha apply --accept-new-host-keys` records them later)', default: true },
    ctx,
  );
  if (!go) return [];
  const confirmed: ConfirmedKey[] = [];
  for (const h of a.hosts) {
    let key: Buffer;
    try {
      key = await probe.fetchKey(h.address, a.ssh.port);
    } catch (err) {
      io.say(`${h.name} (${h.address}): cannot reach SSH: ${(err as Error).message}`);
      continue;
    }
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
      await probe.login({ name: h.name, address: h.address, port: a.ssh.port, user: a.ssh.user, privateKeyPath: io.expandHome(a.ssh.privateKey), key });
      io.say(`${h.name}: SSH login as ${a.ssh.user} and sudo work.`);
    } catch (err) {
      io.say(`SSH test failed: ${(err as Error).message}`);
    }
  }
  return confirmed;
}

/** Asks before replacing each existing file; false when the user declines any. */
export async function askOverwrite(io: WizardIO, existing: string[]): Promise<boolean> {
  for (const f of existing) {
    if (!(await confirm({ message: `${f} already exists. Overwrite it?`, default: false }, io.context))) return false;
  }
  return true;
}
