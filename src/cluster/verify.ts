// `pgha verify`: the cluster does its job, checked end to end from the hosts themselves.
// Each check names its component, the host and the reason when it fails.
import type { Session } from './session.js';
import { anyPatroniCluster, etcdState, sqlVia } from './probes.js';
import { membersStreaming } from './health.js';
import { pgbackrestRunner, stanzaInfo } from './pgbackrest.js';

export interface CheckResult {
  component: 'etcd' | 'patroni' | 'haproxy' | 'pgbackrest';
  host?: string;
  ok: boolean;
  detail: string;
}

async function guard(component: CheckResult['component'], host: string | undefined, fn: () => Promise<string>): Promise<CheckResult> {
  try {
    return { component, host, ok: true, detail: await fn() };
  } catch (err) {
    return { component, host, ok: false, detail: err instanceof Error ? err.message.split('\n')[0] : String(err) };
  }
}

export async function verifyCluster(session: Session): Promise<CheckResult[]> {
  const { inv, conns } = session;
  // Independent checks, run at once: verify costs the slowest one (pgBackRest's check), not the sum.
  const etcd = guard('etcd', undefined, async () => {
    const members = await etcdState(inv, session.withRole('etcd')[0]);
    const sick = members.filter((m) => !m.healthy);
    if (sick.length) throw new Error(`unhealthy member(s): ${sick.map((m) => `${m.name}: ${m.error ?? 'no answer'}`).join('; ')}`);
    const leaders = members.filter((m) => m.leader).map((m) => m.name);
    if (leaders.length !== 1) throw new Error(`expected one leader, found ${leaders.length}`);
    return `${members.length} members healthy, leader ${leaders[0]}`;
  });

  const found = await anyPatroniCluster(inv, (h) => conns.get(h.name));
  const leaders = found?.cluster.members.filter((m) => m.role === 'leader') ?? [];
  const leader = leaders.length === 1 ? inv.host(leaders[0].name) : undefined;
  const patroni = guard('patroni', undefined, async () => {
    if (!found) throw new Error('no Patroni REST API answers');
    if (!leader) throw new Error(`expected exactly one leader, found ${leaders.length}`);
    // A few seconds of grace: the pgBackRest check running alongside switches WAL, and a replica
    // needs a moment to replay the switch.
    let streaming = await membersStreaming(session);
    for (let i = 0; streaming !== true && i < 5; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      streaming = await membersStreaming(session);
    }
    if (streaming !== true) throw new Error(streaming);
    return `leader ${leader.name}; ${found.cluster.members.length - 1} replica(s) streaming within ${inv.patroni.maximum_lag_on_failover} bytes`;
  });

  // Clients' view: psql from a database host to each HAProxy host's ports.
  const client = session.withRole('postgres')[0];
  const haproxy = inv.hostsWithRole('haproxy').map((h) =>
    guard('haproxy', h.name, async () => {
      // A temporary table is a real write that leaves nothing behind; a standby refuses it.
      const out = (
        await sqlVia(inv, client, { host: h.address, port: inv.haproxy.primary_port }, 'create temp table pgha_verify(x int); insert into pgha_verify values (1); select host(inet_server_addr()), x from pgha_verify')
      ).stdout.trim();
      const [addr, x] = out.split('|');
      if (x !== '1') throw new Error(`write/read through port ${inv.haproxy.primary_port} returned "${out}"`);
      if (leader && addr !== leader.address) throw new Error(`port ${inv.haproxy.primary_port} reached ${addr}, the leader is ${leader.name} (${leader.address})`);
      const rep = (await sqlVia(inv, client, { host: h.address, port: inv.haproxy.replicas_port }, 'select pg_is_in_recovery(), host(inet_server_addr())')).stdout.trim();
      const [inRecovery, repAddr] = rep.split('|');
      if (inRecovery !== 't') throw new Error(`port ${inv.haproxy.replicas_port} reached ${repAddr}, which is not in recovery`);
      return `port ${inv.haproxy.primary_port}: write+read on ${leader?.name ?? addr}; port ${inv.haproxy.replicas_port}: replica ${repAddr}`;
    }),
  );

  const pgbackrest = guard('pgbackrest', inv.repositoryHost?.name, async () => {
    const { conn, user } = await pgbackrestRunner(session);
    const stanza = inv.pgbackrest.stanza;
    const check = await conn.run(['pgbackrest', `--stanza=${stanza}`, 'check'], { user, check: false, timeoutMs: 120_000 });
    if (check.code !== 0) throw new Error(`check failed: ${(check.stderr.trim() || check.stdout.trim()).split('\n').slice(-1)[0]}`);
    const info = await stanzaInfo(session);
    if (info.code !== 0) throw new Error(`info status ${info.code}: ${info.message}`);
    return `stanza ${stanza} ok, ${info.backups.length} backup(s), WAL archived up to ${info.archiveMax ?? '?'}`;
  });

  return Promise.all([etcd, patroni, ...haproxy, pgbackrest]);
}

export function formatChecks(results: CheckResult[]): string {
  return results
    .map((r) => `${r.ok ? 'ok    ' : 'FAILED'} ${r.component}${r.host ? ` (${r.host})` : ''}: ${r.detail}`)
    .join('\n');
}
