// `pgha status`'s pure part: the raw answers gathered from the hosts -> one report with a
// verdict and its reasons. No I/O here, so it is tested from captured real outputs.
export type { PatroniSelf } from '../../components/patroni/cluster.js';
import { quorum, type EtcdMemberState } from '../../components/etcd/state.js';
import { upServers, type HaproxyServer } from '../../components/haproxy/state.js';
import { isLeaderRole, isRunningState as isUp, lagOf, leaderOf, normalizeRole, streamingReplicas, type PatroniCluster, type PatroniRole, type PatroniSelf, type ReplicaState } from '../../components/patroni/cluster.js';
import { archivingFails, type StanzaInfo } from '../../components/pgbackrest/info.js';
import { effectiveTiming, failoverExpectation, timingSummary } from '../../components/patroni/timing.js';
import type { Timing } from '../../inventory/index.js';
import { rowProblem, type CertRow } from '../../components/tls/report.js';
import { diskProblem, type DataDisk, type IoWait } from '../../components/patroni/disk.js';

export type Verdict = 'healthy' | 'degraded' | 'down';

/** What a database host's own PostgreSQL says (asked locally as postgres). */
export interface LocalPostgres {
  in_recovery: boolean;
  archiver: {
    last_archived_wal: string | null;
    last_archived_time: string | null;
    failed_count: number;
    last_failed_wal: string | null;
    last_failed_time: string | null;
  };
  replication: ReplicaState[];
  /** The active session waiting longest on the disk (absent in older captures). */
  io_wait?: IoWait | null;
}

type Answer<T> = { ok: T } | { error: string };

/** Everything status asked, as answered (or not). */
export interface StatusInputs {
  cluster: string;
  /** Milliseconds since the epoch, when the answers were gathered. */
  now: number;
  hosts: { name: string; address: string; roles: string[]; unreachable?: string }[];
  postgres: string[];
  etcdHosts: string[];
  haproxyHosts: string[];
  maximumLagOnFailover: number;
  /** The inventory's timing (what Patroni runs with follows from the versions the members report). */
  timing?: Timing;
  stanza: string;
  /** GET /cluster, per postgres host that was asked. */
  patroni: Record<string, Answer<PatroniCluster>>;
  /** GET /patroni, per postgres host: the fallback when no GET /cluster answers (its DCS read hangs on a cut-off etcd member). */
  patroniSelf: Record<string, Answer<PatroniSelf>>;
  /** pg_stat_archiver / pg_stat_replication, per postgres host. */
  local: Record<string, Answer<LocalPostgres>>;
  /** The data directory's filesystem, per postgres host (absent in older captures). */
  dataDisk?: Record<string, Answer<DataDisk>>;
  etcd: Answer<{ from: string; members: EtcdMemberState[] }>;
  haproxy: Record<string, Answer<HaproxyServer[]>>;
  backups: Answer<StanzaInfo>;
  /** Each TLS host's certificates (absent: not asked, as in older captures). */
  tls?: { enabled: boolean; certificates: Record<string, Answer<CertRow[]>> };
}

export type MemberRole = PatroniRole;

export interface MemberStatus {
  name: string;
  host: string | null;
  /** Normalized: Patroni 3.0.2's "master" and 4.x's "primary" are both "leader". */
  role: MemberRole | null;
  /** Normalized: "running" (leader), "streaming" (replica seen streaming by the leader), else Patroni's. */
  state: string;
  /** Patroni's own spelling ("running" for every member on 3.0.2, "streaming" on 3.0.4+); null when not a member. */
  patroni_state: string | null;
  timeline: number | null;
  lag_bytes: number | null;
  pending_restart: boolean;
  tags: Record<string, unknown>;
  reachable: boolean;
  /** The data directory's filesystem (null: not answered). */
  data_disk: DataDisk | null;
  /** The active session waiting longest on the disk now (null: none, or not answered). */
  io_wait: IoWait | null;
}

export interface BackupRef {
  label: string;
  time: string;
  age_seconds: number;
}

/** The timing profile as the members' Patroni runs it (3.2 and later raise a ttl below 20 s). */
export interface TimingReport {
  profile: string;
  /** What the members report (GET /patroni), each distinct version once; empty when none answered. */
  patroni_versions: string[];
  ttl: number;
  loop_wait: number;
  retry_timeout: number;
  /** The inventory's numbers, when Patroni runs with others. */
  asked: { ttl: number; loop_wait: number; retry_timeout: number } | null;
  /** What an unplanned failover takes with these numbers. */
  unplanned_failover: string;
  /** All of the above in one line. */
  summary: string;
}

export interface StatusReport {
  cluster: string;
  verdict: Verdict;
  reasons: string[];
  checked_at: string;
  leader: string | null;
  timing: TimingReport | null;
  paused: boolean;
  scheduled_switchover: PatroniCluster['scheduled_switchover'] | null;
  hosts: { name: string; address: string; reachable: boolean; error?: string }[];
  members: MemberStatus[];
  etcd: { name: string; healthy: boolean; leader: boolean; error?: string }[];
  haproxy: { name: string; reachable: boolean; primary: string[]; replicas: string[]; servers: HaproxyServer[]; error?: string }[];
  backups: {
    stanza: string;
    status: { code: number; message: string } | null;
    last_full: BackupRef | null;
    last_diff: BackupRef | null;
    last_incr: BackupRef | null;
    /** pg_stat_archiver on the leader. */
    archiving: (LocalPostgres['archiver'] & { failing: boolean }) | null;
    /** Newest WAL segment in the repository. */
    repository_wal_max: string | null;
    error?: string;
  };
  /** TLS: on or off, and every certificate on the hosts with its end (a host that did not answer: its error). */
  tls: { enabled: boolean; certificates: CertRow[]; errors: { host: string; error: string }[] };
  /** Not a fault, but worth saying each time (tls: false). */
  warnings: string[];
}

export const TLS_OFF_STATUS_WARNING = 'TLS is off (tls: false): etcd, Patroni\'s REST API and PostgreSQL speak clear text on the network';


/** A member's data disk and disk wait, as its host answered. */
function diskOf(inp: StatusInputs, name: string): { data_disk: DataDisk | null; io_wait: IoWait | null } {
  const d = inp.dataDisk?.[name];
  const l = inp.local[name];
  return { data_disk: d && 'ok' in d ? d.ok : null, io_wait: l && 'ok' in l ? (l.ok.io_wait ?? null) : null };
}

/** The first GET /cluster answer, in inventory order; else one pieced together from each member's GET /patroni. */
function clusterView(inp: StatusInputs): { from: string; cluster: PatroniCluster } | null {
  for (const name of inp.postgres) {
    const a = inp.patroni[name];
    if (a && 'ok' in a) return { from: name, cluster: a.ok };
  }
  const own = inp.postgres.flatMap((name) => {
    const a = inp.patroniSelf?.[name];
    return a && 'ok' in a ? [{ name, self: a.ok }] : [];
  });
  if (own.length === 0) return null;
  const leader = own.find((m) => normalizeRole(m.self.role) === 'leader' && isUp(m.self.state));
  const top = leader?.self.xlog?.location;
  return {
    from: 'GET /patroni',
    cluster: {
      pause: own.some((m) => m.self.pause === true),
      members: own.map(({ name, self }) => {
        const at = self.xlog?.replayed_location ?? self.xlog?.received_location;
        return {
          name,
          role: normalizeRole(self.role),
          state: self.state,
          host: inp.hosts.find((h) => h.name === name)?.address,
          timeline: self.timeline,
          ...(normalizeRole(self.role) === 'leader' ? {} : { lag: typeof top === 'number' && typeof at === 'number' ? Math.max(0, top - at) : ('unknown' as const) }),
          pending_restart: self.pending_restart,
          tags: self.tags,
        };
      }),
    },
  };
}

/** The inventory's timing as the members' Patroni versions run it; null without the inventory's timing. */
function timingReport(inp: StatusInputs): TimingReport | null {
  if (!inp.timing) return null;
  const versions = [
    ...new Set(
      Object.values(inp.patroniSelf ?? {}).flatMap((a) => (a && 'ok' in a && typeof a.ok.patroni?.version === 'string' ? [a.ok.patroni.version] : [])),
    ),
  ];
  const eff = effectiveTiming(inp.timing.patroni, versions);
  const summary = versions.length ? timingSummary(inp.timing, eff) : `${timingSummary(inp.timing, eff)} (no member reported its Patroni version: as the inventory asks)`;
  return {
    profile: inp.timing.profile,
    patroni_versions: versions,
    ttl: eff.ttl,
    loop_wait: eff.loop_wait,
    retry_timeout: eff.retry_timeout,
    asked: eff.asked ?? null,
    unplanned_failover: failoverExpectation(inp.timing, eff),
    summary,
  };
}

function backupRef(list: StanzaInfo['backups'], type: string, now: number): BackupRef | null {
  const last = list.filter((b) => b.type === type).sort((a, b) => b.stop - a.stop)[0];
  if (!last) return null;
  return { label: last.label, time: new Date(last.stop * 1000).toISOString(), age_seconds: Math.max(0, Math.round(now / 1000 - last.stop)) };
}

export function assembleStatus(inp: StatusInputs): StatusReport {
  const reasons: string[] = [];
  let down = false;
  const unreachable = new Map(inp.hosts.filter((h) => h.unreachable).map((h) => [h.name, h.unreachable!]));
  for (const [name, why] of unreachable) reasons.push(`host ${name} is unreachable: ${why}`);

  // ---- Patroni members
  const view = clusterView(inp);
  const members: MemberStatus[] = [];
  let leaderName: string | null = null;
  if (!view) {
    down = true;
    const errors = inp.postgres.map((n) => {
      const a = inp.patroni[n];
      return `${n}: ${a && 'error' in a ? a.error : (unreachable.get(n) ?? 'not asked')}`;
    });
    reasons.push(`no Patroni REST API answers (${errors.join('; ')})`);
  } else {
    if (view.from === 'GET /patroni') reasons.push(`Patroni's cluster view (GET /cluster) did not answer in time on any member: members as each reports itself`);
    const raw = view.cluster.members;
    const leader = leaderOf(view.cluster);
    leaderName = leader?.name ?? null;
    const leaderLocal = leader ? inp.local[leader.name] : undefined;
    const rows = leaderLocal && 'ok' in leaderLocal ? leaderLocal.ok.replication : undefined;
    const streaming = rows && streamingReplicas(rows);
    // Every replica's lag as the leader measures it now, also one in catchup (see lagOf).
    const liveLag = new Map((rows ?? []).map((r) => [r.name, r.received_lag_bytes ?? null]));
    const names = [...inp.postgres, ...raw.map((m) => m.name).filter((n) => !inp.postgres.includes(n))];
    for (const name of names) {
      const m = raw.find((x) => x.name === name);
      const host = inp.hosts.find((h) => h.name === name);
      const reachable = !unreachable.has(name);
      if (!m) {
        members.push({ name, host: host?.address ?? null, role: null, state: 'absent', patroni_state: null, timeline: null, lag_bytes: null, pending_restart: false, tags: {}, reachable, ...diskOf(inp, name) });
        reasons.push(`${name} is not a Patroni member (Patroni not running there?)`);
        continue;
      }
      const role = normalizeRole(m.role);
      let state = m.state;
      if (isUp(m.state)) {
        if (isLeaderRole(role)) state = 'running';
        else if (streaming) state = streaming.has(name) ? 'streaming' : 'running';
        else state = m.state;
      }
      const lag = isLeaderRole(role) ? 0 : (lagOf(m, liveLag) ?? null);
      members.push({
        name,
        host: m.host ?? host?.address ?? null,
        role,
        state,
        patroni_state: m.state,
        timeline: m.timeline ?? null,
        lag_bytes: lag,
        pending_restart: m.pending_restart === true,
        tags: m.tags ?? {},
        reachable,
        ...diskOf(inp, name),
      });
      if (name === leaderName) continue;
      if (!isUp(m.state)) reasons.push(`${name} is ${m.state}`);
      else if (streaming && !streaming.has(name) && role !== 'leader' && role !== 'standby_leader') reasons.push(`${name} is running but does not stream from the leader ${leaderName}`);
      else if (lag === null && leaderName) reasons.push(`${name}: replication lag unknown`);
      else if (lag !== null && lag > inp.maximumLagOnFailover) reasons.push(`${name} lags ${lag} bytes (more than maximum_lag_on_failover ${inp.maximumLagOnFailover})`);
    }
    if (!leader) {
      down = true;
      reasons.unshift(`no running leader (${raw.map((m) => `${m.name} ${m.role} ${m.state}`).join(', ') || 'no members'})`);
    }
    if (view.cluster.pause) reasons.push('the cluster is paused (maintenance mode): no automatic failover');
  }
  // ---- data disks: a full one on the leader refuses writes (PostgreSQL runs on, Patroni does not fail over)
  for (const m of members) {
    const p = diskProblem(m.name, m.data_disk, m.io_wait, m.name === leaderName);
    if (!p) continue;
    if (p.full && m.name === leaderName) {
      down = true;
      reasons.unshift(p.text);
    } else reasons.push(p.text);
  }

  // ---- etcd
  let etcd: StatusReport['etcd'] = [];
  if ('ok' in inp.etcd) {
    etcd = inp.etcd.ok.members.map((m) => ({ name: m.name, healthy: m.healthy, leader: m.leader, ...(m.error ? { error: m.error } : {}) }));
    const healthy = etcd.filter((m) => m.healthy).length;
    const needs = quorum(inp.etcdHosts.length);
    if (healthy < needs) {
      down = true;
      reasons.unshift(`etcd has no quorum: ${healthy} of ${inp.etcdHosts.length} members healthy (needs ${needs})`);
    } else {
      for (const m of etcd.filter((x) => !x.healthy)) reasons.push(`etcd member ${m.name} is not healthy${m.error ? `: ${m.error}` : ''}`);
      const leaders = etcd.filter((m) => m.leader).length;
      if (leaders !== 1) reasons.push(`etcd reports ${leaders} leaders`);
    }
  } else {
    etcd = inp.etcdHosts.map((name) => ({ name, healthy: false, leader: false, error: 'unknown' }));
    reasons.push(`etcd state unknown: ${inp.etcd.error}`);
  }

  // ---- HAProxy, as each HAProxy sees its servers
  const streamingNow = members.filter((m) => m.state === 'streaming').map((m) => m.name);
  const haproxy: StatusReport['haproxy'] = inp.haproxyHosts.map((name) => {
    const a = inp.haproxy[name];
    if (unreachable.has(name)) return { name, reachable: false, primary: [], replicas: [], servers: [], error: 'unreachable' };
    if (!a || 'error' in a) {
      const error = a && 'error' in a ? a.error : 'not asked';
      reasons.push(`HAProxy on ${name}: cannot read its stats: ${error}`);
      return { name, reachable: true, primary: [], replicas: [], servers: [], error };
    }
    const primary = upServers(a.ok, 'primary');
    const replicas = upServers(a.ok, 'replicas');
    if (leaderName && (primary.length !== 1 || primary[0] !== leaderName)) {
      reasons.push(`HAProxy on ${name} routes the primary port to [${primary.join(', ')}], the leader is ${leaderName}`);
    }
    if (streamingNow.length > 0 && replicas.length === 0) reasons.push(`HAProxy on ${name} has no replica up in its replicas backend`);
    return { name, reachable: true, primary, replicas, servers: a.ok };
  });

  // ---- backups and WAL archiving
  const backups: StatusReport['backups'] = { stanza: inp.stanza, status: null, last_full: null, last_diff: null, last_incr: null, archiving: null, repository_wal_max: null };
  if ('ok' in inp.backups) {
    const info = inp.backups.ok;
    backups.status = { code: info.code, message: info.message };
    backups.last_full = backupRef(info.backups, 'full', inp.now);
    backups.last_diff = backupRef(info.backups, 'diff', inp.now);
    backups.last_incr = backupRef(info.backups, 'incr', inp.now);
    backups.repository_wal_max = info.archiveMax ?? null;
    if (info.code !== 0 && info.code !== 2) reasons.push(`pgBackRest stanza ${inp.stanza}: ${info.message} (status ${info.code})`);
    if (!backups.last_full) reasons.push(`no full backup in stanza ${inp.stanza}`);
  } else {
    backups.error = inp.backups.error;
    reasons.push(`backups unknown: ${inp.backups.error}`);
  }
  if (leaderName) {
    const l = inp.local[leaderName];
    if (l && 'ok' in l) {
      const a = l.ok.archiver;
      const failing = archivingFails(a);
      backups.archiving = { ...a, failing };
      if (failing) reasons.push(`WAL archiving fails on the leader ${leaderName}: last failure ${a.last_failed_wal ?? '?'} at ${a.last_failed_time} (${a.failed_count} failures)`);
    } else if (!unreachable.has(leaderName)) {
      reasons.push(`WAL archiving state unknown: ${l && 'error' in l ? l.error : 'not asked'}`);
    }
  }

  // ---- certificates: a problem, or within 30 days of its end, makes the cluster degraded
  const tls: StatusReport['tls'] = { enabled: inp.tls?.enabled ?? false, certificates: [], errors: [] };
  for (const [host, a] of Object.entries(inp.tls?.certificates ?? {})) {
    if ('ok' in a) {
      tls.certificates.push(...a.ok);
      for (const r of a.ok) {
        const p = rowProblem(r);
        if (p) reasons.push(`certificate ${p}`);
      }
    } else {
      tls.errors.push({ host, error: a.error });
      if (!unreachable.has(host)) reasons.push(`certificates on ${host} unknown: ${a.error}`);
    }
  }
  const warnings = inp.tls && !inp.tls.enabled ? [TLS_OFF_STATUS_WARNING] : [];

  const verdict: Verdict = down ? 'down' : reasons.length ? 'degraded' : 'healthy';
  return {
    cluster: inp.cluster,
    verdict,
    reasons,
    checked_at: new Date(inp.now).toISOString(),
    leader: leaderName,
    timing: timingReport(inp),
    paused: view?.cluster.pause === true,
    scheduled_switchover: view?.cluster.scheduled_switchover ?? null,
    hosts: inp.hosts.map((h) => ({ name: h.name, address: h.address, reachable: !h.unreachable, ...(h.unreachable ? { error: h.unreachable } : {}) })),
    members,
    etcd,
    haproxy,
    backups,
    tls,
    warnings,
  };
}
