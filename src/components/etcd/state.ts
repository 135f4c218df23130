// etcd's live state (a fact: etcdctl run on a host, plus a pure parser) and the health gate built
// on it: every member healthy and exactly one leader.
import type { Inventory } from '../../inventory/index.js';
import type { Connection } from '../../ssh/index.js';
import type { Session } from '../../session/session.js';
import { etcdctl, etcdctlAs, etcdEndpoints } from './endpoints.js';

export interface EtcdMemberState {
  name: string;
  endpoint: string;
  healthy: boolean;
  leader: boolean;
  error?: string;
}

// etcd's ids are 64-bit: keep them as strings, JSON numbers would lose digits.
const quoteBigInts = (text: string) => text.replace(/("(?:member_id|leader|cluster_id)"):(\d+)/g, '$1:"$2"');

function parseJsonArray<T>(text: string): T[] {
  const start = text.indexOf('[');
  if (start < 0) return [];
  try {
    return JSON.parse(text.slice(start)) as T[];
  } catch {
    return [];
  }
}

/** Pure: `endpoint health -w json` and `endpoint status -w json` output -> each member's state. */
function parseEtcdState(inv: Inventory, health: { stdout: string; stderr: string }, status: { stdout: string; stderr: string }): EtcdMemberState[] {
  const endpoints = etcdEndpoints(inv);
  const healthList = parseJsonArray<{ endpoint: string; health: boolean; error?: string }>(health.stdout);
  const statusList = parseJsonArray<{ Endpoint: string; Status: { header: { member_id: string }; leader: string } }>(quoteBigInts(status.stdout));
  const about = (ep: string) => (status.stderr + health.stderr).split('\n').find((l) => l.includes(ep))?.trim();
  return inv.hostsWithRole('etcd').map((h, i) => {
    const ep = endpoints[i];
    const hl = healthList.find((x) => x.endpoint === ep);
    const st = statusList.find((x) => x.Endpoint === ep);
    const error = hl?.error ?? (st ? undefined : about(ep) ?? 'no answer');
    return {
      name: h.name,
      endpoint: ep,
      healthy: hl?.health === true,
      leader: st !== undefined && st.Status.header.member_id === st.Status.leader,
      ...(hl?.health === true ? {} : { error }),
    };
  });
}

/** Every etcd member's health and which one leads, asked with etcdctl on `from`. */
export async function etcdState(inv: Inventory, from: Connection): Promise<EtcdMemberState[]> {
  const [health, status] = await Promise.all([
    from.run(etcdctl(inv, 'endpoint', 'health', '-w', 'json'), { ...etcdctlAs(inv), check: false, timeoutMs: 15_000 }),
    from.run(etcdctl(inv, 'endpoint', 'status', '-w', 'json'), { ...etcdctlAs(inv), check: false, timeoutMs: 15_000 }),
  ]);
  return parseEtcdState(inv, health, status);
}

/** The verdict on a state: true, or what is wrong. */
export function etcdProblem(members: EtcdMemberState[]): true | string {
  const sick = members.filter((m) => !m.healthy);
  if (sick.length) return `unhealthy member(s): ${sick.map((m) => `${m.name}: ${m.error ?? 'no answer'}`).join('; ')}`;
  const leaders = members.filter((m) => m.leader);
  return leaders.length === 1 ? true : `expected one leader, found ${leaders.length}`;
}

/** Gate: every member healthy, one leader (asked from the first connected etcd host). */
export async function etcdReady(session: Session): Promise<true | string> {
  return etcdProblem(await etcdState(session.inv, session.withRole('etcd')[0]));
}
