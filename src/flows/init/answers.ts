// The answers `pgha init` needs, whether they come from the wizard or from flags, and the checks
// both paths share (the wizard re-asks on a failed check; flags mode reports every failure).
import { addressProblem, aptProxyProblem, canonicalAddress, cidrProblem, CLUSTER_NAME_RE, etcdCountProblem, HOST_NAME_RE, isAddressSyntax, POSTGRES_VERSIONS, REPOSITORY_PATH_RE, SSH_USER_RE } from '../../inventory/index.js';

export interface HostEntry {
  name: string;
  address: string;
}

export interface Ports {
  postgres: number;
  restapi: number;
  etcdClient: number;
  etcdPeer: number;
  haproxyPrimary: number;
  haproxyReplicas: number;
  haproxyStats: number;
}

export type Repository = { type: 'host'; host: string } | { type: 'shared'; path: string };

export interface InitAnswers {
  clusterName: string;
  /** null: left out of the inventory, the hosts' Debian release decides (15 on Debian 12, 17 on Debian 13). */
  postgresVersion: number | null;
  hosts: HostEntry[];
  /** privateKey null: none named (the ssh-agent, then ~/.ssh/id_ed25519, id_ecdsa, id_rsa). */
  ssh: { user: string; port: number; privateKey: string | null };
  roles: { etcd: string[]; postgres: string[]; haproxy: string[] };
  repository: Repository;
  synchronousMode: boolean;
  ports: Ports;
  aptProxy: string | null;
  /** Networks (CIDR) whose clients may connect to PostgreSQL, written as pg_hba rules. */
  clientNetworks: string[];
}

export const DEFAULTS = {
  clusterName: 'main',
  postgresVersion: null, // the hosts' release decides
  sshUser: 'admin',
  sshPort: 22,
  privateKey: null as string | null,
  sharedRepoPath: '/mnt/pgbackrest',
  ports: {
    postgres: 5432,
    restapi: 8008,
    etcdClient: 2379,
    etcdPeer: 2380,
    haproxyPrimary: 5000,
    haproxyReplicas: 5001,
    haproxyStats: 7000,
  } satisfies Ports,
};

export const PORT_LABELS: Record<keyof Ports, string> = {
  postgres: 'PostgreSQL port',
  restapi: 'Patroni REST API port',
  etcdClient: 'etcd client port',
  etcdPeer: 'etcd peer port',
  haproxyPrimary: 'HAProxy primary (read-write) port',
  haproxyReplicas: 'HAProxy replicas (read-only) port',
  haproxyStats: 'HAProxy stats port',
};

// Each check returns an error message, or null when the value is fine.

export function checkClusterName(v: string): string | null {
  return CLUSTER_NAME_RE.test(v)
    ? null
    : 'a cluster name is letters, digits, - and _ (starting with a letter or digit, at most 63)';
}

// The same rules as the inventory's schema (so what init writes validates), with messages for a prompt.

export function checkHostName(v: string, taken: string[] = []): string | null {
  if (!HOST_NAME_RE.test(v)) {
    return `"${v}" is not a valid host name: lowercase letters, digits and -, not starting or ending with -`;
  }
  if (taken.includes(v)) return `host "${v}" is already listed`;
  return null;
}

export function checkAddress(v: string, taken: string[] = []): string | null {
  if (!isAddressSyntax(v)) return `"${v}" is not an IP address or host name`;
  const problem = addressProblem(v);
  if (problem) return `"${v}": ${problem}`;
  if (taken.some((t) => canonicalAddress(t) === canonicalAddress(v))) return `address ${v} is already used by another host`;
  return null;
}

export function checkSshUser(v: string): string | null {
  return SSH_USER_RE.test(v) ? null : `"${v}" is not a user name: a-z, 0-9, _ and -, starting with a letter or _, at most 32 characters`;
}

export function checkPort(v: number): string | null {
  return Number.isInteger(v) && v >= 1 && v <= 65535 ? null : `${v} is not a port (1-65535)`;
}

export function checkPostgresVersion(v: number): string | null {
  const { min, max } = POSTGRES_VERSIONS;
  return Number.isInteger(v) && v >= min && v <= max ? null : `PostgreSQL ${v} is not supported (${min} to ${max})`;
}

export function checkAptProxy(v: string): string | null {
  const problem = aptProxyProblem(v);
  return problem ? `"${v}": ${problem}` : null;
}

export function checkClientNetwork(v: string): string | null {
  const problem = cidrProblem(v);
  return problem ? `"${v}": ${problem}` : null;
}

export function checkSharedPath(v: string): string | null {
  return REPOSITORY_PATH_RE.test(v) ? null : 'the shared repository path must be absolute, without spaces or control characters';
}

export function splitList(v: string): string[] {
  return v
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

/** Checks one role's member list against the known host names. */
export function checkRole(role: 'etcd' | 'postgres' | 'haproxy', members: string[], hostNames: string[]): string | null {
  if (members.length === 0) return `${role}: name at least one host`;
  const unknown = members.filter((m) => !hostNames.includes(m));
  if (unknown.length) return `${role}: unknown host ${unknown.join(', ')} (hosts: ${hostNames.join(', ')})`;
  if (new Set(members).size !== members.length) return `${role}: a host is listed twice`;
  if (role === 'etcd' && etcdCountProblem(members.length, false)) {
    const why = members.length % 2 === 0 ? ': an even count adds no fault tolerance' : '';
    return `etcd: needs an odd number of members, at least 3 (got ${members.length})${why}`;
  }
  return null;
}

/** Every problem with a full set of answers (empty when they make a valid inventory). */
export function answerProblems(a: InitAnswers): string[] {
  const problems: string[] = [];
  const push = (p: string | null) => p && problems.push(p);
  push(checkClusterName(a.clusterName));
  if (a.postgresVersion !== null) push(checkPostgresVersion(a.postgresVersion));
  if (a.hosts.length === 0) problems.push('no hosts');
  a.hosts.forEach((h, i) => {
    push(checkHostName(h.name, a.hosts.slice(0, i).map((x) => x.name)));
    push(checkAddress(h.address, a.hosts.slice(0, i).map((x) => x.address)));
  });
  const names = a.hosts.map((h) => h.name);
  push(checkPort(a.ssh.port));
  push(checkSshUser(a.ssh.user));
  for (const role of ['etcd', 'postgres', 'haproxy'] as const) push(checkRole(role, a.roles[role], names));
  if (a.repository.type === 'host') {
    const repo = a.repository.host;
    if (!names.includes(repo)) problems.push(`repository host "${repo}" is not one of the hosts (${names.join(', ')})`);
    else if (a.roles.postgres.includes(repo)) {
      problems.push(`repository host "${repo}" also runs postgres: backups must live off the database hosts`);
    }
  } else {
    push(checkSharedPath(a.repository.path));
  }
  for (const [k, v] of Object.entries(a.ports)) {
    const p = checkPort(v);
    if (p) problems.push(`${PORT_LABELS[k as keyof Ports]}: ${p}`);
  }
  const used = [a.ssh.port, ...Object.values(a.ports)];
  if (new Set(used).size !== used.length) problems.push('ports: SSH and each service need their own port');
  if (a.synchronousMode && a.roles.postgres.length < 2) problems.push('synchronous replication needs at least 2 postgres hosts');
  if (a.aptProxy !== null) push(checkAptProxy(a.aptProxy));
  for (const n of a.clientNetworks) push(checkClientNetwork(n));
  return problems;
}
