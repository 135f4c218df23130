// `pgha status`'s questions, asked from the hosts themselves, all at once: each host is connected
// on its own (an unreachable one is reported, not fatal), all of a host's questions go in ONE
// remote command as soon as its connection is up (one SSH channel and one sudo per host: each
// question is a component's command, read by its pure parser), and every question has a deadline.
import type { Host, Inventory } from '../../inventory/index.js';
import type { Reach } from '../../session/session.js';
import { askTogether, httpGetEachArgv, parseHttpGetEach, sqlLocalArgv, within, type HttpResult, type PartResult, type TogetherPart } from '../../session/remote.js';
import { etcdStateArgv, parseEtcdState, type EtcdMemberState } from '../../components/etcd/state.js';
import { parseHaproxyCsv, statsCsvUrl } from '../../components/haproxy/state.js';
import { clusterAnswer, REPLICATION_SQL, selfAnswer } from '../../components/patroni/cluster.js';
import { restapiUrl } from '../../components/patroni/paths.js';
import { ARCHIVER_SQL, parseInfo } from '../../components/pgbackrest/info.js';
import { REPO_USER } from '../../components/pgbackrest/paths.js';
import { INFO_ARGS, pgbackrestArgv } from '../../components/pgbackrest/runner.js';
import { randomBytes, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { parseTlsFacts, tlsFactsArgv } from '../../components/tls/facts.js';
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

const LOCAL_SQL = `select json_build_object(
  'in_recovery', pg_is_in_recovery(),
  'archiver', ${ARCHIVER_SQL},
  'replication', ${REPLICATION_SQL})`;

const message = (err: unknown) => (err instanceof Error ? err.message : String(err)).split('\n')[0];

type Answer<T> = { ok: T } | { error: string };

/** The questions a host can be asked (each one command of its component). */
type Question = 'http' | 'psql' | 'backups' | 'tls' | 'etcdHealth' | 'etcdStatus';
/** A host's HTTP questions: HAProxy's stats, Patroni's cluster view and its own state. */
type HttpKey = 'stats' | 'cluster' | 'self';
/** What each question is called in an error (as `WHAT on HOST: ...`). */
const WHAT: Record<Question, string> = { http: 'HTTP', psql: 'psql', backups: 'pgbackrest info', tls: 'certificates', etcdHealth: 'etcdctl', etcdStatus: 'etcdctl' };

/** A question's result read by `read`; its error as `WHAT on HOST: ...` when it failed, timed out or could not be read. */
function readPart<T>(what: string, host: string, r: PartResult, read: (r: PartResult) => T, opts: { check?: boolean } = {}): Answer<T> {
  if (r.code === 124 || r.code === 137) return { error: `${what} on ${host}: no answer within ${QUESTION_MS / 1000}s` };
  if (r.code === -1) return { error: `${what} on ${host}: no result` };
  if (r.code !== 0 && opts.check !== false) return { error: `${what} on ${host}: exit ${r.code}${r.stderr.trim() ? `: ${r.stderr.trim().split('\n').at(-1)}` : ''}` };
  try {
    return { ok: read(r) };
  } catch (err) {
    return { error: message(err) };
  }
}

/** Every question, asked over `reach`'s connections as they come up. */
export async function gatherStatus(inv: Inventory, reach: Reach): Promise<StatusInputs> {
  const pg = inv.hostsWithRole('postgres');
  const proxies = inv.hostsWithRole('haproxy');
  const tlsHosts = tlsOn(inv) ? inv.hosts.filter(usesTls) : [];
  const nonce = randomBytes(8).toString('hex');
  const etcdHosts = new Set(inv.hostsWithRole('etcd').map((h) => h.name));
  // etcd's view is asked from the first etcd host whose connection comes up.
  let etcdFrom: string | undefined;
  const backupHosts = new Set(inv.repositoryHost ? [inv.repositoryHost.name] : pg.map((h) => h.name));

  // Per host: its HTTP questions' URLs, asked by one curl (HAProxy's local stats first: a hung Patroni, 3 s per
  // URL, does not hold them back; the second request to Patroni resumes the first one's TLS session).
  const urlsOf = (h: Host): Partial<Record<HttpKey, string>> => ({
    ...(h.roles.has('haproxy') ? { stats: statsCsvUrl(inv) } : {}),
    ...(h.roles.has('postgres') ? { cluster: restapiUrl(inv, h, '/cluster'), self: restapiUrl(inv, h, '/patroni') } : {}),
  });
  // Per host: every question's result, or why none could be asked (unreachable, the command failed).
  const asked = new Map(
    inv.hosts.map((h) => {
      const result = reach.pending.get(h.name)!.then(async (c): Promise<Answer<Partial<Record<Question, PartResult>>>> => {
        if (!c) return { error: `unreachable: ${reach.unreachable.get(h.name)}` };
        const parts: Partial<Record<Question, TogetherPart>> = {};
        const urls = Object.values(urlsOf(h));
        if (urls.length) parts.http = { argv: httpGetEachArgv(urls), timeoutSec: QUESTION_MS / 1000 };
        if (h.roles.has('postgres')) parts.psql = { argv: sqlLocalArgv(inv, LOCAL_SQL), user: 'postgres', timeoutSec: QUESTION_MS / 1000 };
        if (backupHosts.has(h.name)) parts.backups = { argv: pgbackrestArgv(inv, INFO_ARGS), user: inv.repositoryHost ? REPO_USER : 'postgres', timeoutSec: QUESTION_MS / 1000 };
        if (tlsHosts.includes(h)) parts.tls = { argv: tlsFactsArgv(servicesOf(h)), timeoutSec: QUESTION_MS / 1000 };
        if (etcdHosts.has(h.name) && etcdFrom === undefined) {
          etcdFrom = h.name;
          const e = etcdStateArgv(inv);
          parts.etcdHealth = { argv: e.health, user: e.user, timeoutSec: QUESTION_MS / 1000 };
          parts.etcdStatus = { argv: e.status, user: e.user, timeoutSec: QUESTION_MS / 1000 };
        }
        const keys = Object.keys(parts) as Question[];
        try {
          const results = await within(QUESTION_MS + 4000, `status questions on ${h.name}`, askTogether(c, keys.map((k) => parts[k]!), { nonce, display: `status questions: ${keys.join(', ')}` }));
          return { ok: Object.fromEntries(keys.map((k, i) => [k, results[i]])) };
        } catch (err) {
          return { error: message(err) };
        }
      });
      return [h.name, result] as const;
    }),
  );
  // One question's answer on one host, read by `read`.
  const on = async <T>(name: string, q: Question, read: (r: PartResult) => T, opts: { check?: boolean } = {}): Promise<Answer<T>> => {
    const all = await asked.get(name)!;
    if ('error' in all) return all;
    const r = all.ok[q];
    if (!r) return { error: `${WHAT[q]} on ${name}: not asked` };
    return readPart(WHAT[q], name, r, read, opts);
  };
  // One URL's answer, read by `parse`; the error of the whole question or of that URL otherwise.
  const httpAnswer = async <T>(h: Host, key: HttpKey, parse: (r: HttpResult) => T): Promise<Answer<T>> => {
    const urls = urlsOf(h);
    const keys = Object.keys(urls) as HttpKey[];
    const all = await on(h.name, 'http', (r) => parseHttpGetEach(h.name, keys.map((k) => urls[k]!), r), { check: false });
    if ('error' in all) return all;
    const r = all.ok[keys.indexOf(key)];
    if (r instanceof Error) return { error: message(r) };
    try {
      return { ok: parse(r) };
    } catch (err) {
      return { error: message(err) };
    }
  };
  const patroni = Promise.all(pg.map((h) => httpAnswer(h, 'cluster', (r) => clusterAnswer(h, r))));
  const self = Promise.all(pg.map((h) => httpAnswer(h, 'self', selfAnswer)));
  const local = Promise.all(pg.map((h) => on(h.name, 'psql', (r) => JSON.parse(r.stdout) as LocalPostgres)));
  const etcd = (async (): Promise<Answer<{ from: string; members: EtcdMemberState[] }>> => {
    await Promise.all([...etcdHosts].map((n) => asked.get(n)));
    if (!etcdFrom) return { error: 'no etcd host is reachable' };
    const from = etcdFrom;
    const all = await asked.get(from)!;
    if ('error' in all) return all;
    const [health, status] = [all.ok.etcdHealth!, all.ok.etcdStatus!];
    // etcdctl's failures are in its output (read by the parser); only a question that did not finish fails.
    return readPart('etcdctl', from, [health, status].find((r) => r.code !== 0) ?? health, () => ({ from, members: parseEtcdState(inv, health, status) }), { check: false });
  })();
  const haproxy = Promise.all(proxies.map((h) => httpAnswer(h, 'stats', (r) => parseHaproxyCsv(r.body))));
  const backups = (async () => {
    const stanza = inv.pgbackrest.stanza;
    const info = (r: PartResult) => parseInfo(r.stdout, stanza);
    if (inv.repositoryHost) return on(inv.repositoryHost.name, 'backups', info);
    // A shared repository path: pgBackRest runs on the database hosts; the first that answers.
    const answers = await Promise.all(pg.map((h) => on(h.name, 'backups', info)));
    return answers.find((a) => 'ok' in a) ?? answers[0];
  })();
  const tls = (async () => {
    const cas = await localCas(inv);
    return Promise.all(tlsHosts.map((h) => on(h.name, 'tls', (r) => certificateRows(inv, h, parseTlsFacts(r.stdout), cas, Date.now()))));
  })();

  const [patroniAnswers, selfAnswers, localAnswers, etcdAnswer, haproxyAnswers, backupsAnswer, tlsAnswers] = await Promise.all([patroni, self, local, etcd, haproxy, backups, tls]);
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
    etcd: etcdAnswer,
    haproxy: Object.fromEntries(proxies.map((h, i) => [h.name, haproxyAnswers[i]])),
    backups: backupsAnswer,
    tls: { enabled: tlsOn(inv), certificates: Object.fromEntries(tlsHosts.map((h, i) => [h.name, tlsAnswers[i]])) },
  };
}
