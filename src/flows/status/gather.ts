// `pgha status`'s questions, asked from the hosts themselves, all at once: each host is connected
// on its own (an unreachable one is reported, not fatal) and every question has a deadline.
import type { Inventory } from '../../inventory/index.js';
import type { Connection, EachCommand, RunResult } from '../../ssh/index.js';
import type { Reach } from '../../session/session.js';
import { httpGetEach, sqlLocalCommand, within, type HttpResult } from '../../session/remote.js';
import { etcdState } from '../../components/etcd/state.js';
import { parseHaproxyCsv, statsCsvUrl } from '../../components/haproxy/state.js';
import { clusterAnswer, REPLICATION_SQL, selfAnswer } from '../../components/patroni/cluster.js';
import { dataDiskArgv, IO_WAIT_SQL, parseDataDisk } from '../../components/patroni/disk.js';
import { restapiUrl } from '../../components/patroni/paths.js';
import { ARCHIVER_SQL, parseInfo } from '../../components/pgbackrest/info.js';
import { REPO_USER } from '../../components/pgbackrest/paths.js';
import { INFO_ARGS, pgbackrestArgv } from '../../components/pgbackrest/runner.js';
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { parseTlsFacts, tlsFactsCommand } from '../../components/tls/facts.js';
import { splitPems } from '../../components/tls/inspect.js';
import { caPaths, servicesOf, tlsOn, usesTls } from '../../components/tls/paths.js';
import { certificateRows } from '../../components/tls/report.js';
import type { LocalPostgres, StatusInputs } from './model.js';

/** The cluster CA's certificates from the operator's machine (only the certificates: no key is read); none: the hosts' bundles decide. */
async function localCas(inv: Inventory): Promise<X509Certificate[]> {
  const p = caPaths(inv);
  const texts = await Promise.all([p.cert, p.nextCert].map((f) => readFile(f, 'utf8').catch(() => '')));
  return texts.flatMap((t) => splitPems(t)).map((pem) => new X509Certificate(pem));
}

/** Per question: long enough for a loaded host, short enough that status never seems to hang. */
const QUESTION_MS = 8_000;
/** A batch's command that may hang (PostgreSQL, pgBackRest) stops here, so the others still answer. */
const PART_MS = 6_000;

const LOCAL_SQL = `select json_build_object(
  'in_recovery', pg_is_in_recovery(),
  'archiver', ${ARCHIVER_SQL},
  'replication', ${REPLICATION_SQL},
  'io_wait', ${IO_WAIT_SQL})`;

const message = (err: unknown) => (err instanceof Error ? err.message : String(err)).split('\n')[0];

async function answer<T>(what: string, fn: () => Promise<T>): Promise<{ ok: T } | { error: string }> {
  try {
    return { ok: await within(QUESTION_MS, what, fn()) };
  } catch (err) {
    return { error: message(err) };
  }
}

/** One part of a host's combined question (`asked`: the parts' results in `keys` order), read by `parse`; the error of the whole question or of that part otherwise. */
async function partAnswer<K extends string, R, T>(q: { keys: K[]; asked?: Promise<{ ok: (R | Error)[] } | { error: string }> }, key: K, parse: (r: R) => T): Promise<{ ok: T } | { error: string }> {
  const all = await q.asked!;
  if ('error' in all) return all;
  const r = all.ok[q.keys.indexOf(key)];
  if (r instanceof Error) return { error: message(r) };
  try {
    return { ok: parse(r) };
  } catch (err) {
    return { error: message(err) };
  }
}

/** Every question, asked over `reach`'s connections as they come up. */
export async function gatherStatus(inv: Inventory, reach: Reach): Promise<StatusInputs> {
  const conn = (name: string) => reach.pending.get(name)!;
  // A question for one host: answered once its connection is up; "unreachable" otherwise.
  const on = async <T>(name: string, what: string, fn: (c: Connection) => Promise<T>) => {
    const c = await conn(name);
    if (!c) return { error: `unreachable: ${reach.unreachable.get(name)}` };
    return answer(`${what} on ${name}`, () => fn(c));
  };
  const pg = inv.hostsWithRole('postgres');
  const proxies = inv.hostsWithRole('haproxy');
  // A host's HTTP questions (Patroni's cluster view and its own state, HAProxy's stats) in one curl.
  const http = new Map(
    inv.hosts.map((h) => {
      // HAProxy's local stats first: a hung Patroni (3 s per URL) does not hold them back.
      const urls = {
        ...(h.roles.has('haproxy') ? { stats: statsCsvUrl(inv) } : {}),
        ...(h.roles.has('postgres') ? { cluster: restapiUrl(inv, h, '/cluster'), self: restapiUrl(inv, h, '/patroni') } : {}),
      };
      const keys = Object.keys(urls) as (keyof typeof urls)[];
      const asked = keys.length ? on(h.name, 'HTTP', (c) => httpGetEach(c, keys.map((k) => urls[k]!))) : undefined;
      return [h.name, { keys, asked }] as const;
    }),
  );
  const httpAnswer = <T>(name: string, key: 'cluster' | 'self' | 'stats', parse: (r: HttpResult) => T) => partAnswer(http.get(name)!, key, parse);
  // A host's other questions (root's and other users') in one round trip: its certificates, its data
  // disk, pgBackRest's info and its PostgreSQL, that last as it is the one most likely to hang.
  const tlsHosts = tlsOn(inv) ? inv.hosts.filter(usesTls) : [];
  const infoHosts = inv.repositoryHost ? [inv.repositoryHost] : pg;
  const batches = new Map(
    inv.hosts.map((h) => {
      const cmds: Partial<Record<'tls' | 'disk' | 'info' | 'psql', EachCommand>> = {
        ...(tlsHosts.includes(h) ? { tls: tlsFactsCommand(servicesOf(h)) } : {}),
        ...(h.roles.has('postgres') ? { disk: { cmd: dataDiskArgv(inv), user: 'postgres', display: 'data disk' } } : {}),
        // A shared repository path: pgBackRest runs on the database hosts.
        ...(infoHosts.includes(h) ? { info: { cmd: pgbackrestArgv(inv, INFO_ARGS), user: inv.repositoryHost ? REPO_USER : 'postgres', timeoutMs: PART_MS } } : {}),
        ...(h.roles.has('postgres') ? { psql: { ...sqlLocalCommand(inv, LOCAL_SQL), timeoutMs: PART_MS } } : {}),
      };
      const keys = Object.keys(cmds) as (keyof typeof cmds)[];
      const asked = keys.length ? on(h.name, 'questions', (c) => c.runEach(keys.map((k) => cmds[k]!), { timeoutMs: QUESTION_MS })) : undefined;
      return [h.name, { keys, asked }] as const;
    }),
  );
  const batchAnswer = <T>(name: string, key: 'tls' | 'disk' | 'info' | 'psql', parse: (r: RunResult) => T) => partAnswer(batches.get(name)!, key, parse);
  const patroni = Promise.all(pg.map((h) => httpAnswer(h.name, 'cluster', (r) => clusterAnswer(h, r))));
  const self = Promise.all(pg.map((h) => httpAnswer(h.name, 'self', selfAnswer)));
  const local = Promise.all(pg.map((h) => batchAnswer(h.name, 'psql', (r) => JSON.parse(r.stdout) as LocalPostgres)));
  const dataDisk = Promise.all(pg.map((h) => batchAnswer(h.name, 'disk', (r) => parseDataDisk(r.stdout))));
  // etcd's view from the first etcd host that answers SSH.
  const etcd = (async () => {
    const hosts = inv.hostsWithRole('etcd');
    // The first etcd host whose connection comes up.
    const from = await new Promise<string | undefined>((resolve) => {
      let left = hosts.length;
      if (!left) resolve(undefined);
      for (const h of hosts) void conn(h.name).then((c) => (c ? resolve(h.name) : --left === 0 && resolve(undefined)));
    });
    if (!from) return { error: 'no etcd host is reachable' };
    return answer(`etcdctl on ${from}`, async () => ({ from, members: await etcdState(inv, (await conn(from))!) }));
  })();
  const haproxy = Promise.all(proxies.map((h) => httpAnswer(h.name, 'stats', (r) => parseHaproxyCsv(r.body))));
  const backups = (async () => {
    const answers = await Promise.all(infoHosts.map((h) => batchAnswer(h.name, 'info', (r) => parseInfo(r.stdout, inv.pgbackrest.stanza))));
    // A shared repository: the first database host that answers.
    return answers.find((a) => 'ok' in a) ?? answers[0];
  })();
  const tls = (async () => {
    const cas = await localCas(inv);
    return Promise.all(tlsHosts.map((h) => batchAnswer(h.name, 'tls', (r) => certificateRows(inv, h, parseTlsFacts(r.stdout), cas, Date.now()))));
  })();

  const [patroniAnswers, selfAnswers, localAnswers, etcdAnswer, haproxyAnswers, backupsAnswer, tlsAnswers, diskAnswers] = await Promise.all([patroni, self, local, etcd, haproxy, backups, tls, dataDisk]);
  return {
    cluster: inv.cluster.name,
    now: Date.now(),
    hosts: inv.hosts.map((h) => ({
      name: h.name,
      address: h.address,
      roles: [...h.roles],
      ...(reach.unreachable.has(h.name) ? { unreachable: reach.unreachable.get(h.name) } : {}),
    })),
    postgres: pg.map((h) => h.name),
    etcdHosts: inv.hostsWithRole('etcd').map((h) => h.name),
    haproxyHosts: inv.hostsWithRole('haproxy').map((h) => h.name),
    maximumLagOnFailover: inv.patroni.maximum_lag_on_failover,
    timing: inv.timing,
    stanza: inv.pgbackrest.stanza,
    patroni: Object.fromEntries(pg.map((h, i) => [h.name, patroniAnswers[i]])),
    patroniSelf: Object.fromEntries(pg.map((h, i) => [h.name, selfAnswers[i]])),
    local: Object.fromEntries(pg.map((h, i) => [h.name, localAnswers[i]])),
    dataDisk: Object.fromEntries(pg.map((h, i) => [h.name, diskAnswers[i]])),
    etcd: etcdAnswer,
    haproxy: Object.fromEntries(proxies.map((h, i) => [h.name, haproxyAnswers[i]])),
    backups: backupsAnswer,
    tls: { enabled: tlsOn(inv), certificates: Object.fromEntries(tlsHosts.map((h, i) => [h.name, tlsAnswers[i]])) },
  };
}
