// Non-interactive init: the same answers, from flags. Every missing or bad flag is reported at once.
import { DEFAULTS, answerProblems, splitList, type HostEntry, type InitAnswers } from './answers.js';

export interface InitFlags {
  name?: string;
  host?: string[];
  sshUser?: string;
  sshPort?: string;
  sshKey?: string;
  pgVersion?: string;
  etcd?: string;
  postgres?: string;
  haproxy?: string;
  repoHost?: string;
  repoPath?: string;
  sync?: boolean;
  aptProxy?: string;
  clientNetwork?: string[];
  postgresPort?: string;
  restapiPort?: string;
  etcdClientPort?: string;
  etcdPeerPort?: string;
  primaryPort?: string;
  replicasPort?: string;
  statsPort?: string;
  writeAnyway?: boolean;
  output?: string;
  secrets?: string;
  knownHosts?: string;
  scanHostKeys?: boolean;
  yes?: boolean;
  force?: boolean;
  nonInteractive?: boolean;
}

export function answersFromFlags(f: InitFlags): { answers: InitAnswers; problems: string[] } {
  const problems: string[] = [];
  if (!f.name) problems.push('missing --name NAME (the cluster name)');
  if (!f.host?.length) problems.push('missing --host NAME=ADDRESS (repeat it for every host, at least 3)');
  if (!f.repoHost && !f.repoPath) {
    problems.push('missing --repo-host NAME or --repo-path PATH (where the backup repository lives)');
  }
  if (f.repoHost && f.repoPath) problems.push('--repo-host and --repo-path exclude each other');
  const missing = problems.length > 0;

  const hosts: HostEntry[] = [];
  for (const h of f.host ?? []) {
    const m = /^([^=]+)=(.+)$/.exec(h);
    if (!m) problems.push(`--host ${h}: expected NAME=ADDRESS`);
    else hosts.push({ name: m[1].trim(), address: m[2].trim() });
  }
  const int = (flag: string, v: string | undefined, def: number) => {
    if (v === undefined) return def;
    if (!/^\d+$/.test(v)) problems.push(`${flag} ${v}: expected a number`);
    return Number(v);
  };
  // Role defaults: the first three hosts that are not the repository host.
  const dbDefault = hosts.map((h) => h.name).filter((n) => n !== f.repoHost).slice(0, 3);
  const role = (v: string | undefined) => (v === undefined ? dbDefault : splitList(v));
  const answers: InitAnswers = {
    clusterName: f.name ?? DEFAULTS.clusterName,
    postgresVersion: f.pgVersion === undefined ? DEFAULTS.postgresVersion : int('--pg-version', f.pgVersion, 0),
    hosts,
    ssh: {
      user: f.sshUser ?? DEFAULTS.sshUser,
      port: int('--ssh-port', f.sshPort, DEFAULTS.sshPort),
      privateKey: f.sshKey ?? DEFAULTS.privateKey,
    },
    roles: { etcd: role(f.etcd), postgres: role(f.postgres), haproxy: role(f.haproxy) },
    repository: f.repoPath ? { type: 'shared', path: f.repoPath } : { type: 'host', host: f.repoHost ?? '' },
    synchronousMode: f.sync ?? false,
    ports: {
      postgres: int('--postgres-port', f.postgresPort, DEFAULTS.ports.postgres),
      restapi: int('--restapi-port', f.restapiPort, DEFAULTS.ports.restapi),
      etcdClient: int('--etcd-client-port', f.etcdClientPort, DEFAULTS.ports.etcdClient),
      etcdPeer: int('--etcd-peer-port', f.etcdPeerPort, DEFAULTS.ports.etcdPeer),
      haproxyPrimary: int('--primary-port', f.primaryPort, DEFAULTS.ports.haproxyPrimary),
      haproxyReplicas: int('--replicas-port', f.replicasPort, DEFAULTS.ports.haproxyReplicas),
      haproxyStats: int('--stats-port', f.statsPort, DEFAULTS.ports.haproxyStats),
    },
    aptProxy: f.aptProxy ?? null,
    clientNetworks: (f.clientNetwork ?? []).flatMap(splitList),
  };
  // With required flags missing, the remaining checks would only echo them (e.g. "no hosts").
  if (!missing) problems.push(...answerProblems(answers));
  else if (hosts.length) problems.push(...answerProblems(answers).filter((p) => !/repository host ""/.test(p)));
  return { answers, problems };
}
