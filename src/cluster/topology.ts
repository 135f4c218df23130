// Day 2: the cluster's topology follows the inventory. Before apply touches any host it reads the
// live cluster (etcd's membership and who answers, Patroni's members and leader, what each host
// runs), asks every component what changes that takes (hosts that join or leave its role), adds
// a switchover when the leader leaves, and either refuses (exit 2, the reason and a safe order)
// or prints the plan. Apply then runs each step at its point of the rollout, announced and timed;
// --check prints the same plan and runs none.
import { planComponents } from '../components/index.js';
import { readMembership, type EtcdLive } from '../components/etcd/membership.js';
import { etcdClientUrl, etcdDataDir } from '../components/etcd/endpoints.js';
import { tlsOn, withTls } from '../components/tls/paths.js';
import { HAPROXY_CONFIG } from '../components/haproxy/index.js';
import { checkSwitchover } from '../components/patroni/checks.js';
import { leaderOf, patroniCluster, replicationState, streamingReplicas, type PatroniCluster } from '../components/patroni/cluster.js';
import { bestReplica } from '../components/patroni/members.js';
import { readBackupRecord } from '../components/pgbackrest/record.js';
import { pgbackrestRunner, stanzaInfo } from '../components/pgbackrest/runner.js';
import type { Release } from '../components/base/release.js';
import { dataDir, PATRONI_CONFIG } from '../components/patroni/paths.js';
import type { ApplyContext, HostRoleFacts, Topology, TopologyFacts, TopologyPhase, TopologyStep } from '../components/types.js';
import { formatSeconds, parseServiceShow, SERVICE_SHOW, Steps, type Reporter } from '../engine/index.js';
import { InputError } from '../errors.js';
import type { Inventory } from '../inventory/index.js';
import { HEADER } from '../render/template.js';
import type { Session } from '../session/session.js';
import type { Connection } from '../ssh/index.js';
import { planSwitchover, switchoverNow } from './leader-change.js';

// What a host runs of pgha's roles, in one round trip: its services' state (SERVICE_SHOW), then flags.
const ROLE_SERVICES = ['patroni', 'etcd', 'haproxy'] as const;
const HOST_FACTS = `(set -- ${ROLE_SERVICES.join(' ')}; ${SERVICE_SHOW})
echo @@flags
[ -f "$1/PG_VERSION" ] && echo pgdata
[ -d "$2/member" ] && echo etcddata
[ -f "$3" ] && echo patroniconfig
grep -qsF "$5" "$4" && echo haproxypgha
command -v etcdctl >/dev/null && echo etcdctl
true`;

/** The HOST_FACTS script's output, read (pure). */
export function parseHostFacts(stdout: string): HostRoleFacts & { etcdctl: boolean } {
  const at = stdout.indexOf('@@flags\n');
  const services = parseServiceShow(at < 0 ? '' : stdout.slice(0, at), ROLE_SERVICES);
  const lines = (at < 0 ? stdout : stdout.slice(at)).split('\n').map((l) => l.trim());
  const svc = (name: (typeof ROLE_SERVICES)[number]) => {
    const f = services.get(name)!;
    return { active: f.active === 'active' || f.active === 'activating' || f.active === 'reloading', enabled: f.enabled === 'enabled' };
  };
  const has = (flag: string) => lines.includes(flag);
  return {
    patroni: { ...svc('patroni'), config: has('patroniconfig') },
    etcd: { ...svc('etcd'), data: has('etcddata') },
    haproxy: { ...svc('haproxy'), pgha: has('haproxypgha') },
    pgData: has('pgdata'),
    etcdctl: has('etcdctl'),
  };
}

async function hostFacts(inv: Inventory, conn: Connection, release: Release) {
  const r = await conn.run(['sh', '-c', HOST_FACTS, 'sh', dataDir(inv, release), etcdDataDir(inv), PATRONI_CONFIG, HAPROXY_CONFIG, HEADER], { display: 'role facts (services, data directories)' });
  return parseHostFacts(r.stdout);
}

/**
 * etcd's membership, asked where etcdctl is installed (etcd hosts first) of every inventory host's
 * client URL: the way the inventory says the cluster speaks, else the other (a cluster still in
 * clear text, which this apply moves to TLS; the etcd component compares members whatever the scheme).
 */
async function etcdFacts(session: Session, hosts: Map<string, { etcdctl: boolean }>): Promise<EtcdLive | null> {
  const { inv } = session;
  const order = [...inv.hostsWithRole('etcd'), ...inv.hosts.filter((h) => !h.roles.has('etcd'))].filter((h) => hosts.get(h.name)?.etcdctl);
  for (const view of [inv, withTls(inv, !tlsOn(inv))]) {
    const endpoints = inv.hosts.map((h) => etcdClientUrl(view, h));
    for (const h of order) {
      const live = await readMembership(session.conn(h), endpoints);
      if (live) return live;
    }
  }
  return null;
}

/** Patroni's GET /cluster from a host that runs Patroni (postgres hosts first), and who streams from the leader. */
async function patroniFacts(session: Session, hosts: Map<string, HostRoleFacts>): Promise<TopologyFacts['patroni']> {
  const { inv } = session;
  const order = [...inv.hostsWithRole('postgres'), ...inv.hosts.filter((h) => !h.roles.has('postgres'))].filter((h) => hosts.get(h.name)?.patroni.active);
  let cluster: PatroniCluster | undefined;
  for (const h of order) {
    try {
      cluster = await patroniCluster(inv, session.conn(h), h);
      break;
    } catch {
      // the next one
    }
  }
  if (!cluster) return null;
  const leader = leaderOf(cluster);
  const streaming = leader && session.conns.has(leader.name) ? await replicationState(inv, session.conn(leader.name)).then(streamingReplicas, () => undefined) : undefined;
  return { cluster, streaming };
}

/** Everything the plan is made from, read-only. */
export async function readTopologyFacts(session: Session, opts: { release: Release; replace?: string; purge?: boolean }): Promise<TopologyFacts> {
  const { inv } = session;
  const read = await Promise.all([...session.conns.values()].map(async (c) => [c.target.name, await hostFacts(inv, c, opts.release)] as const));
  const hosts = new Map(read);
  const [etcd, patroni] = await Promise.all([etcdFacts(session, hosts), patroniFacts(session, hosts)]);
  const facts: TopologyFacts = { release: opts.release, etcd, patroni, hosts, replace: opts.replace, purge: opts.purge ?? false };
  if (opts.replace !== undefined && inv.repositoryHost?.name === opts.replace) {
    // The rebuilt repository host: is its repository there (a rerun), and what did the old one hold?
    const exists = await stanzaInfo(session, await pgbackrestRunner(session)).then((i) => i.code === 0 || i.code === 2, () => false);
    facts.repository = { exists, recorded: await readBackupRecord(session) };
  }
  return facts;
}

/** The steps, in the order apply runs them: every component's, and a switchover first when the leader leaves. */
export function planTopology(facts: TopologyFacts, inv: Inventory): TopologyStep[] {
  const steps = planComponents(facts, inv);
  const c = facts.patroni?.cluster;
  const leader = c && leaderOf(c);
  const staying = inv.hostsWithRole('postgres').map((h) => h.name);
  if (facts.replace && leader?.name === facts.replace) {
    throw new InputError(`${facts.replace} is the running leader of cluster ${inv.cluster.name}: its machine was not rebuilt. pgha replace is for a machine rebuilt with an empty disk; to rebuild a replica's data use pgha reinit`);
  }
  if (c && leader && !staying.includes(leader.name)) {
    const candidate = bestReplica(inv, c, staying, facts.patroni?.streaming);
    // The usual pre-checks (paused, a switchover already scheduled), before any host is touched.
    checkSwitchover(inv, c, candidate.name, facts.patroni?.streaming);
    steps.unshift({
      phase: 'before',
      text: `postgres: switch over from ${leader.name} to ${candidate.name} first (${leader.name} leaves roles.postgres; ${candidate.name} is the replica that stays with the least lag)`,
      run: async (ctx) => {
        const steps = new Steps((t) => ctx.rollout.reporter.say(t.replace(/\n$/, '')));
        const plan = await planSwitchover(ctx.session, candidate.name);
        await switchoverNow(ctx.session, plan, candidate.name, steps);
      },
    });
  }
  return steps;
}

/** A plan and its runner: each step announced (`topology N/M: TEXT`) and timed when it runs. */
export class TopologyPlan implements Topology {
  private readonly ran = new Set<TopologyStep>();

  constructor(
    readonly facts: TopologyFacts,
    readonly steps: TopologyStep[],
    private readonly reporter: Reporter,
  ) {}

  /** The plan as printed before anything changes (empty when there is no step). */
  describe(check: boolean): string {
    if (!this.steps.length) return '';
    const n = this.steps.length;
    return [
      `topology: ${n} change${n === 1 ? '' : 's'} to the running cluster, in this order${check ? ' (check mode: none is made)' : ''}:`,
      ...this.steps.map((s, i) => `  ${i + 1}. ${s.text}`),
      '',
    ].join('\n');
  }

  async run(phase: TopologyPhase, ctx: ApplyContext): Promise<void> {
    if (ctx.rollout.check) return;
    for (const s of this.steps.filter((x) => x.phase === phase)) {
      const label = `topology ${this.steps.indexOf(s) + 1}/${this.steps.length}`;
      this.reporter.say(`${label}: ${s.text}`);
      const t0 = Date.now();
      await s.run(ctx);
      this.ran.add(s);
      this.reporter.say(`${label} done in ${formatSeconds(Date.now() - t0)}`);
    }
  }

  /** Steps that did not run (a phase no component called): a bug, reported as such. */
  notRun(): TopologyStep[] {
    return this.steps.filter((s) => !this.ran.has(s));
  }
}
