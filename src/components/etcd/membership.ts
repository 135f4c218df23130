// etcd's membership on a live cluster. Facts: who is a member (etcdctl member list) and which
// members answer. Pure: the order of a membership change and the quorum it keeps at every step,
// refused when a step would lose it. Actions: a member added as a learner (where etcd has them),
// started with ETCD_INITIAL_CLUSTER_STATE=existing and promoted; a member removed from the
// membership, then stopped and its data removed. One member at a time, each behind a health gate.
import { InputError, PghaError } from '../../errors.js';
import type { Operation } from '../../engine/index.js';
import type { Connection } from '../../ssh/index.js';
import { etcdctlAsAt, etcdctlAsFor, etcdctlAt } from './endpoints.js';
import { quorum } from './state.js';

export interface LiveMember {
  /** Hexadecimal, as etcdctl takes it. */
  id: string;
  /** Empty for a member added but never started. */
  name: string;
  peerUrls: string[];
  clientUrls: string[];
  learner: boolean;
  /** It answered: `endpoint health` (a voter), `endpoint status` (a learner, which serves no reads). */
  healthy: boolean;
  leader: boolean;
  /** Why it is not healthy. */
  error?: string;
}

export interface EtcdLive {
  members: LiveMember[];
  /** The members' etcd version, e.g. 3.4.23 ('' when none answered). */
  version: string;
}

// ---------------------------------------------------------------- facts (parsers are pure)

// etcd's ids are 64-bit: quoted before JSON.parse, or their last digits would be lost.
const quoteIds = (text: string) => text.replace(/("(?:ID|member_id|leader|cluster_id)"):(\d+)/g, '$1:"$2"');
const hex = (decimal: string) => BigInt(decimal).toString(16);

/** `member list -w json` -> members (health unknown yet: false). */
export function parseMemberList(stdout: string): LiveMember[] {
  const start = stdout.indexOf('{');
  if (start < 0) throw new PghaError(`etcdctl member list printed no JSON: ${stdout.slice(0, 200)}`);
  const doc = JSON.parse(quoteIds(stdout.slice(start))) as {
    members?: { ID: string; name?: string; peerURLs?: string[]; clientURLs?: string[]; isLearner?: boolean }[];
  };
  const list = (doc.members ?? []).map((m) => ({
    id: hex(m.ID),
    name: m.name ?? '',
    peerUrls: m.peerURLs ?? [],
    clientUrls: m.clientURLs ?? [],
    learner: m.isLearner === true,
    healthy: false,
    leader: false,
  }));
  // etcd lists them by id: by name (then peer URL) the plans and messages read the same every time.
  // (Members never started, without a name, last.)
  const key = (m: LiveMember) => (m.name ? `0${m.name}` : `1${m.peerUrls[0] ?? ''}`);
  return list.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

function jsonArray<T>(stdout: string): T[] {
  const start = stdout.indexOf('[');
  if (start < 0) return [];
  try {
    return JSON.parse(quoteIds(stdout.slice(start))) as T[];
  } catch {
    return [];
  }
}

/** Adds health, leadership and version from `endpoint health -w json` and `endpoint status -w json`. */
export function withHealth(members: LiveMember[], health: string, status: string): EtcdLive {
  const h = jsonArray<{ endpoint: string; health: boolean; error?: string }>(health);
  const s = jsonArray<{ Endpoint: string; Status: { header: { member_id: string }; leader: string; version: string } }>(status);
  let version = '';
  const out = members.map((m) => {
    const st = s.find((x) => hex(x.Status.header.member_id) === m.id);
    const hl = h.find((x) => m.clientUrls.includes(x.endpoint));
    if (st) version = st.Status.version;
    const healthy = m.learner ? st !== undefined : hl?.health === true;
    return {
      ...m,
      healthy,
      leader: st !== undefined && st.Status.header.member_id === st.Status.leader,
      ...(healthy ? {} : { error: m.name === '' ? 'never started' : (hl?.error ?? 'no answer') }),
    };
  });
  return { members: out, version };
}

/** The membership asked on `from` (etcdctl there) of the etcd at `endpoints`; null when no etcd answers there. */
export async function readMembership(from: Connection, endpoints: string[]): Promise<EtcdLive | null> {
  const list = await from.run(etcdctlAt(endpoints, 'member', 'list', '-w', 'json'), { ...etcdctlAsAt(endpoints), check: false, timeoutMs: 20_000 });
  if (list.code !== 0) return null;
  const members = parseMemberList(list.stdout);
  const urls = members.flatMap((m) => m.clientUrls);
  if (!urls.length) return { members, version: '' };
  // Short deadlines, and each member's status asked on its own: etcdctl asks several endpoints one
  // after the other, and a member that is down would cost its whole deadline each time.
  const quick = (eps: string[], ...args: string[]) => etcdctlAt(eps, ...args).map((a) => (a.startsWith('--command-timeout=') ? '--command-timeout=2s' : a));
  const [health, ...status] = await Promise.all([
    from.run(quick(urls, 'endpoint', 'health', '-w', 'json'), { ...etcdctlAsAt(urls), check: false, timeoutMs: 20_000 }),
    ...urls.map((u) => from.run(quick([u], 'endpoint', 'status', '-w', 'json'), { ...etcdctlAsAt([u]), check: false, timeoutMs: 20_000 })),
  ]);
  const statusJson = `[${status.map((r) => jsonArray<unknown>(r.stdout)).flat().map((x) => JSON.stringify(x)).join(',')}]`;
  return withHealth(members, health.stdout, statusJson);
}

/** etcd 3.4 and later add a member as a learner: it votes only once promoted, after it caught up. */
export function hasLearners(version: string): boolean {
  const m = /^(\d+)\.(\d+)/.exec(version);
  return m !== null && (Number(m[1]) > 3 || (Number(m[1]) === 3 && Number(m[2]) >= 4));
}

/** The verdict on a membership: true, or what is wrong (a learner, a member down, no single leader). */
export function membershipProblem(live: EtcdLive): true | string {
  const sick = live.members.filter((m) => !m.healthy);
  if (sick.length) return `not answering: ${sick.map((m) => `${memberLabel(m)} (${m.error ?? 'no answer'})`).join(', ')}`;
  const learners = live.members.filter((m) => m.learner);
  if (learners.length) return `still a learner: ${learners.map(memberLabel).join(', ')}`;
  const leaders = live.members.filter((m) => m.leader);
  return leaders.length === 1 ? true : `expected one leader, found ${leaders.length}`;
}

export const memberLabel = (m: LiveMember) => m.name || `${m.id} (${m.peerUrls[0] ?? 'no peer URL'}, never started)`;

// ---------------------------------------------------------------- the plan (pure)

/** An etcd member as the inventory wants it. */
export interface MemberTarget {
  name: string;
  peerUrl: string;
  clientUrl: string;
}

export type MembershipChange =
  | {
      kind: 'remove';
      /** The member as etcd lists it. */
      member: LiveMember;
      /** Its inventory host's name, when it has one (its etcd is then stopped and its data removed). */
      host?: string;
      why: 'down' | 'leaves' | 'replaced';
    }
  | {
      kind: 'add';
      target: MemberTarget;
      /** Added by an earlier, interrupted run: a learner to promote, or a voter that never started. */
      existing?: LiveMember;
      learner: boolean;
    };

export interface MembershipPlan {
  changes: MembershipChange[];
}

const names = (xs: string[]) => (xs.length <= 1 ? xs.join('') : `${xs.slice(0, -1).join(', ')} and ${xs[xs.length - 1]}`);

/**
 * The changes that take the live membership to the targets, in a safe order: members that are
 * down leave first (a member that is down still counts for the quorum: removing it only helps);
 * then new members join one at a time (as learners where etcd has them, so they vote only once
 * caught up); then members that answer leave, one at a time. Quorum (a majority of the voting
 * members answering) is checked before and after every step with the measured health, never
 * assumed: a plan that would lose it is refused (InputError) with the reason and a safe order.
 * `inventoryHosts`: names of the inventory's hosts (a member that leaves and answers must be one,
 * so that it can be stopped). `replace`: a host whose member is re-created (its machine was rebuilt).
 */
export function planMembership(
  live: EtcdLive,
  targets: MemberTarget[],
  opts: { inventoryHosts: string[]; replace?: string; learners: boolean },
): MembershipPlan {
  const targetOf = (m: LiveMember) => targets.find((t) => m.peerUrls.includes(t.peerUrl));
  for (const m of live.members) {
    const t = targetOf(m);
    if (t && m.name && m.name !== t.name) {
      throw new InputError(`etcd member ${m.name} has the peer URL ${t.peerUrl}, which the inventory gives to ${t.name}: pgha does not rename members; remove ${m.name} from roles.etcd first, then add ${t.name}`);
    }
  }
  const hostOf = (m: LiveMember) => {
    const name = m.name || targetOf(m)?.name;
    return name && opts.inventoryHosts.includes(name) ? name : undefined;
  };

  // The membership as it will be, one change at a time.
  type Sim = { id: string; voter: boolean; healthy: boolean };
  let sim: Sim[] = live.members.map((m) => ({ id: m.id, voter: !m.learner, healthy: m.healthy }));
  const voters = () => sim.filter((s) => s.voter);
  const ok = () => voters().filter((s) => s.healthy).length >= quorum(voters().length);
  const downNow = live.members.filter((m) => !m.healthy && !m.learner);
  const counts = () => `${voters().filter((s) => s.healthy).length} answering of ${voters().length} voting members (quorum ${quorum(voters().length)})`;

  if (live.members.length && !ok()) {
    throw new InputError(`etcd has no quorum now: ${counts()}; not answering: ${names(downNow.map(memberLabel))}. pgha changes no membership without quorum: bring those members back first`);
  }

  const changes: MembershipChange[] = [];
  const replaced = (m: LiveMember) => opts.replace !== undefined && targetOf(m)?.name === opts.replace && !m.healthy;
  const leaving = live.members.filter((m) => !targetOf(m) || replaced(m));
  for (const m of leaving) {
    if (m.healthy && !hostOf(m)) {
      throw new InputError(
        `etcd member ${memberLabel(m)} answers but is not an inventory host: pgha cannot stop it. Keep it under hosts: (without roles.etcd) so that apply stops it and removes its data, or stop it yourself`,
      );
    }
  }
  // 1. Members that are down (or re-created) leave first.
  for (const m of leaving.filter((x) => !x.healthy)) {
    changes.push({ kind: 'remove', member: m, host: hostOf(m), why: replaced(m) ? 'replaced' : 'down' });
    sim = sim.filter((s) => s.id !== m.id);
  }
  // 2. New members, one at a time.
  for (const t of targets) {
    const m = live.members.find((x) => x.peerUrls.includes(t.peerUrl));
    if (m && !replaced(m) && !m.learner && m.name) continue; // a member already
    const existing = m && !replaced(m) ? m : undefined;
    const learner = existing ? existing.learner : opts.learners;
    const id = existing?.id ?? `new:${t.name}`;
    if (!existing) sim.push({ id, voter: !learner, healthy: false });
    if (!ok()) {
      const down = downNow.filter((d) => targetOf(d) && !replaced(d)).map(memberLabel);
      throw new InputError(
        `adding ${t.name} to etcd would lose quorum: etcd ${learner ? '' : 'before 3.4 has no learners: '}a member added is a voter before it has started, leaving ${counts()}`,
        [`Safe order: first remove ${names(down) || 'the members that are down'} from roles.etcd (a member that is down leaves safely) and apply, then add ${t.name}.`],
      );
    }
    const s = sim.find((x) => x.id === id)!;
    s.voter = true;
    s.healthy = true;
    changes.push({ kind: 'add', target: t, existing, learner });
  }
  // 3. Members that answer leave, one at a time.
  for (const m of leaving.filter((x) => x.healthy)) {
    sim = sim.filter((s) => s.id !== m.id);
    if (!ok()) {
      const down = downNow.filter((d) => targetOf(d)).map(memberLabel);
      const rest = leaving.filter((x) => x.healthy).map(memberLabel);
      throw new InputError(`removing ${memberLabel(m)} from etcd would lose quorum: ${counts()} would be left${down.length ? `, as ${names(down)} ${down.length === 1 ? 'does' : 'do'} not answer` : ''}`, [
        `Safe order: ${down.length ? `bring ${names(down)} back first (a member that is down still counts for the quorum), or remove ${down.length === 1 ? 'it' : 'them'} from roles.etcd in an apply of ${down.length === 1 ? 'its' : 'their'} own (a member that is down leaves safely); then ` : ''}remove ${names(rest)}.`,
      ]);
    }
    changes.push({ kind: 'remove', member: m, host: hostOf(m), why: 'leaves' });
  }
  return { changes };
}

/** The plan line of a change. */
export function describeChange(c: MembershipChange): string {
  if (c.kind === 'add') {
    if (c.existing?.learner) return `etcd: ${c.target.name} (added earlier as a learner) started with ETCD_INITIAL_CLUSTER_STATE=existing and promoted to a voting member`;
    if (c.existing) return `etcd: ${c.target.name} (added earlier) started with ETCD_INITIAL_CLUSTER_STATE=existing`;
    return c.learner
      ? `etcd: add ${c.target.name} as a learner, start it with ETCD_INITIAL_CLUSTER_STATE=existing, promote it to a voting member`
      : `etcd: add ${c.target.name}, start it with ETCD_INITIAL_CLUSTER_STATE=existing`;
  }
  const who = memberLabel(c.member);
  const cleanup = c.host ? `, then stop etcd on ${c.host} and remove its data` : '';
  if (c.why === 'replaced') return `etcd: remove the old member ${who} (its machine was rebuilt; it does not answer)`;
  if (c.why === 'down') return `etcd: remove member ${who}, which does not answer${c.host ? cleanup : ` (not an inventory host: its machine is not contacted)`}`;
  return `etcd: remove member ${who}${cleanup}`;
}

// ---------------------------------------------------------------- actions (ops on a host)

/** ETCD_INITIAL_CLUSTER for a member joining now: every member etcd lists (named), and itself. */
export function joinInitialCluster(live: LiveMember[], self: MemberTarget): string {
  const others = live.filter((m) => m.name && !m.peerUrls.includes(self.peerUrl)).map((m) => `${m.name}=${m.peerUrls[0]}`);
  return [...others, `${self.name}=${self.peerUrl}`].join(',');
}

/**
 * A membership change with etcdctl, tried again while etcd refuses it as "unhealthy cluster": its
 * strict reconfiguration check refuses a change until every member has been connected for a few
 * seconds (a member just started or promoted).
 */
async function reconfigure(conn: Connection, argv: string[], progress?: (text: string) => void, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let said = false;
  for (;;) {
    const r = await conn.run(argv, { ...etcdctlAsFor(argv), check: false, timeoutMs: 30_000 });
    if (r.code === 0) return;
    const why = (r.stderr.trim().split('\n').pop() ?? '').replace(/^Error: /, '');
    if (!/unhealthy cluster/.test(why) || Date.now() > deadline) throw new PghaError(`${conn.target.name}: etcdctl ${argv.slice(argv.indexOf('member')).join(' ')} failed: ${why || `exit ${r.code}`}`);
    if (!said) progress?.(`etcd answers "${why}" (a member connected only just): trying again`);
    said = true;
    await new Promise((res) => setTimeout(res, 1000));
  }
}

/** `etcdctl member add` run on `conn`: skipped when etcd lists the peer URL already. */
export function memberAddOp(endpoints: () => string[], t: MemberTarget, learner: boolean): Operation {
  const listed = async (conn: Connection) => {
    const r = await conn.run(etcdctlAt(endpoints(), 'member', 'list', '-w', 'json'), { ...etcdctlAsAt(endpoints()), timeoutMs: 20_000 });
    return parseMemberList(r.stdout).some((m) => m.peerUrls.includes(t.peerUrl));
  };
  return {
    describe: `etcd member add ${t.name}${learner ? ' (learner)' : ''}`,
    async check(conn) {
      return (await listed(conn)) ? null : { summary: `add ${t.peerUrl}${learner ? ' as a learner' : ''}` };
    },
    async apply(conn, _facts, progress) {
      await reconfigure(conn, etcdctlAt(endpoints(), 'member', 'add', t.name, `--peer-urls=${t.peerUrl}`, ...(learner ? ['--learner'] : [])), progress);
    },
  };
}

/** `etcdctl member remove`, with the leadership moved away first when the member leads. */
export function memberRemoveOp(endpoints: () => string[], m: LiveMember, onLeader: (text: string) => void): Operation {
  return {
    describe: `etcd member remove ${memberLabel(m)}`,
    async check(conn) {
      const r = await conn.run(etcdctlAt(endpoints(), 'member', 'list', '-w', 'json'), { ...etcdctlAsAt(endpoints()), timeoutMs: 20_000 });
      return parseMemberList(r.stdout).some((x) => x.id === m.id) ? { summary: `remove member ${m.id}` } : null;
    },
    async apply(conn, _facts, progress) {
      const live = await readMembership(conn, endpoints());
      const me = live?.members.find((x) => x.id === m.id);
      if (me?.leader) {
        // Removing the leader costs an election; handing over first does not.
        const next = live!.members.find((x) => x.id !== m.id && x.healthy && !x.learner);
        if (next) {
          await conn.run(etcdctlAt(me.clientUrls, 'move-leader', next.id), { ...etcdctlAsAt(me.clientUrls), timeoutMs: 30_000 });
          onLeader(`etcd leadership moved from ${memberLabel(m)} to ${next.name}`);
        }
      }
      const rest = endpoints().filter((u) => !m.clientUrls.includes(u));
      await reconfigure(conn, etcdctlAt(rest.length ? rest : endpoints(), 'member', 'remove', m.id), progress);
    },
  };
}

/** `etcdctl member promote` of a learner, tried until etcd finds it caught up. */
export async function promoteLearner(conn: Connection, endpoints: string[], id: string): Promise<true | string> {
  const r = await conn.run(etcdctlAt(endpoints, 'member', 'promote', id), { ...etcdctlAsAt(endpoints), check: false, timeoutMs: 20_000 });
  if (r.code === 0 || /is not a learner/i.test(r.stderr)) return true;
  return (r.stderr.trim() || r.stdout.trim()).split('\n').pop() ?? `etcdctl exit ${r.code}`;
}
