// etcd's live state (a fact: one curl run on an etcd host, plus a pure parser) and the health gate built
// on it: every member healthy and exactly one leader.
import type { Inventory } from '../../inventory/index.js';
import type { Connection } from '../../ssh/index.js';
import type { Session } from '../../session/session.js';
import { etcdctlAs, etcdEndpoints } from './endpoints.js';
import { CA_BUNDLE, certFile, keyFile, tlsOn } from '../tls/paths.js';

export interface EtcdMemberState {
  name: string;
  endpoint: string;
  healthy: boolean;
  leader: boolean;
  error?: string;
}

/** Each answer's line after its body: `@@etcd INDEX HTTP_CODE CURL_EXIT CURL_ERROR` (the bodies are JSON on one line). */
const LINE = /^@@etcd (\d+) (\d{3}) (\d+) ?(.*)$/;

/**
 * The command asking every member, by ONE curl over etcd's JSON gateway (as etcdctl 3.4/3.5 asks
 * them, without a Go process per question): GET /health (a quorum read, as `etcdctl endpoint
 * health`) and POST /v3/maintenance/status (the member's id and its leader's), member after
 * member, so each body is followed by its own line. With TLS it runs as etcd, with the member's
 * certificate (see etcdctlAs). A SYN lost once is sent again after 1 s, so 1.5 s to connect; 2 s per
 * question in all (a member cut off costs 3 s, one that accepts and never answers 4 s).
 */
export function etcdStateCommand(inv: Inventory): { cmd: string[]; display: string } & ReturnType<typeof etcdctlAs> {
  const tls = tlsOn(inv) ? ['--cacert', CA_BUNDLE, '--cert', certFile('etcd'), '--key', keyFile('etcd')] : [];
  const ask = (i: number, url: string, post: boolean) => [
    ...(i ? ['--next'] : []),
    '-sS', '--connect-timeout', '1.5', '--max-time', '2', ...tls,
    ...(post ? ['-X', 'POST', '-d', '{}'] : []),
    '-w', `\\n@@etcd ${i} %{http_code} %{exitcode} %{errormsg}\\n`, url,
  ];
  const cmd = ['curl', ...etcdEndpoints(inv).flatMap((ep, i) => [...ask(2 * i, `${ep}/health`, false), ...ask(2 * i + 1, `${ep}/v3/maintenance/status`, true)])];
  return { cmd, display: `etcd health and status of ${etcdEndpoints(inv).join(' ')}`, ...etcdctlAs(inv) };
}

/** Pure: etcdStateCommand's output -> each member's state (the inventory's etcd hosts, in order). */
export function parseEtcdState(inv: Inventory, stdout: string): EtcdMemberState[] {
  const answers = new Map<number, { status: number; exit: number; error: string; body: string }>();
  let body: string[] = [];
  for (const line of stdout.split('\n')) {
    const m = LINE.exec(line);
    if (!m) {
      body.push(line);
      continue;
    }
    answers.set(Number(m[1]), { status: Number(m[2]), exit: Number(m[3]), error: m[4], body: body.join('\n').trim() });
    body = [];
  }
  const json = (text: string): Record<string, unknown> | undefined => {
    try {
      // etcd's ids are 64-bit: the gateway sends them as strings, a number would lose digits.
      return JSON.parse(text.replace(/("(?:member_id|leader|cluster_id)"):(\d+)/g, '$1:"$2"')) as Record<string, unknown>;
    } catch {
      return undefined;
    }
  };
  const endpoints = etcdEndpoints(inv);
  return inv.hostsWithRole('etcd').map((h, i) => {
    const health = answers.get(2 * i);
    const status = answers.get(2 * i + 1);
    const said = health && json(health.body);
    // etcd 3.4 says "true", 3.5 too (with a reason when not).
    const healthy = health?.exit === 0 && health.status === 200 && String(said?.health) === 'true';
    const st = status?.exit === 0 && status.status === 200 ? (json(status.body) as { header?: { member_id?: string }; leader?: string } | undefined) : undefined;
    const error = !health
      ? 'no answer'
      : health.exit !== 0
        ? health.error || `curl exit ${health.exit}`
        : typeof said?.reason === 'string' && said.reason
          ? said.reason
          : `HTTP ${health.status}${health.body ? `: ${health.body.slice(0, 200)}` : ''}`;
    return {
      name: h.name,
      endpoint: endpoints[i],
      healthy,
      leader: st?.header?.member_id !== undefined && st.leader !== undefined && String(st.header.member_id) === String(st.leader),
      ...(healthy ? {} : { error }),
    };
  });
}

/** etcdStateCommand's result, read: each member's state; when curl itself failed (not installed, killed), every member with why. */
export function readEtcdState(inv: Inventory, r: { code: number; stdout: string; stderr: string }): EtcdMemberState[] {
  if (!r.stdout.split('\n').some((l) => LINE.test(l))) {
    const why = r.stderr.trim().split('\n')[0] || `curl exit ${r.code}`;
    return parseEtcdState(inv, '').map((m) => ({ ...m, error: why }));
  }
  return parseEtcdState(inv, r.stdout);
}

/** Every etcd member's health and which one leads, asked on `from` (an etcd host: with TLS its key is etcd's). */
export async function etcdState(inv: Inventory, from: Connection): Promise<EtcdMemberState[]> {
  const { cmd, display, ...as } = etcdStateCommand(inv);
  return readEtcdState(inv, await from.run(cmd, { ...as, display, check: false, timeoutMs: 25_000 }));
}

/** Members that make a majority of `voters`. */
export const quorum = (voters: number) => Math.floor(voters / 2) + 1;

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
