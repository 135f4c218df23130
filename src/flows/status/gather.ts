// `pgha status`'s questions, asked from the hosts themselves, all at once: each host is connected
// on its own (an unreachable one is reported, not fatal) and every question has a deadline.
import type { Inventory } from '../../inventory/index.js';
import { CommandTimedOut, type Connection, type EachCommand, type RunResult } from '../../ssh/index.js';
import type { Reach } from '../../session/session.js';
import { httpEachCommand, RemoteError, sqlLocalCommand, sqlSessionCommand, within, type HttpResult } from '../../session/remote.js';
import { etcdStateCommand, quorum, readEtcdState, type EtcdMemberState } from '../../components/etcd/state.js';
import { parseHaproxyCsv, statsCsvUrl } from '../../components/haproxy/state.js';
import { clusterAnswer, REPLICATION_SQL, selfAnswer } from '../../components/patroni/cluster.js';
import { dataDiskArgv, IO_WAIT_SQL, parseDataDisk } from '../../components/patroni/disk.js';
import { restapiUrl } from '../../components/patroni/paths.js';
import { ARCHIVER_SQL, parseInfo } from '../../components/pgbackrest/info.js';
import { REPO_USER } from '../../components/pgbackrest/paths.js';
import { INFO_ARGS, pgbackrestArgv } from '../../components/pgbackrest/runner.js';
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { parseTlsFacts, tlsFactsCommand, tlsFactsIdentity, tlsFactsSame, tlsIdentityFiles } from '../../components/tls/facts.js';
import { splitPems } from '../../components/tls/inspect.js';
import { caPaths, servicesOf, tlsOn, usesTls } from '../../components/tls/paths.js';
import { certificateRows } from '../../components/tls/report.js';
import type { LocalPostgres, StatusInputs } from './model.js';
import { TlsFactsCache } from './tls-cache.js';
import { diskQuestion, readAskerAnswer, statusAskerCommand, type AskerQuestion } from './asker.js';

/** The cluster CA's certificates from the operator's machine, as PEM (only the certificates: no key is read); none: the hosts' bundles decide. */
async function localCaPems(inv: Inventory): Promise<string[]> {
  const p = caPaths(inv);
  const texts = await Promise.all([p.cert, p.nextCert].map((f) => readFile(f, 'utf8').catch(() => '')));
  return texts.flatMap((t) => splitPems(t));
}

/** Per question: long enough for a loaded host, short enough that status never seems to hang. */
const QUESTION_MS = 8_000;
/** Per URL over a kept connection, as curl's --max-time on a host. */
const HTTP_MS = 3_000;
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

type Part = 'http' | 'tls' | 'disk' | 'info' | 'etcd' | 'psql';
/** A host's answers: each part's, and its URLs' when they were asked over its kept connection instead of by curl. */
type Batch = Promise<{ ok: Map<Part, RunResult | Error>; http?: (HttpResult | RemoteError)[] } | { error: string }> | undefined;

/** One part of a host's combined question, read by `parse`; the error of the whole question or of that part otherwise. */
async function partAnswer<T>(asked: Batch, key: Part, parse: (r: RunResult) => T): Promise<{ ok: T } | { error: string }> {
  const all = await asked!;
  if ('error' in all) return all;
  const r = all.ok.get(key);
  if (r === undefined) return { error: `${key} was not asked` };
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
  // A host's HTTP questions (Patroni's cluster view and its own state, HAProxy's stats): one curl.
  const http = new Map(
    inv.hosts.map((h) => {
      // HAProxy's local stats first: a hung Patroni (3 s per URL) does not hold them back.
      const urls = {
        ...(h.roles.has('haproxy') ? { stats: statsCsvUrl(inv) } : {}),
        ...(h.roles.has('postgres') ? { cluster: restapiUrl(inv, h, '/cluster'), self: restapiUrl(inv, h, '/patroni') } : {}),
      };
      const keys = Object.keys(urls) as (keyof typeof urls)[];
      const list = keys.map((k) => urls[k]!);
      return [h.name, { keys, urls: list, command: keys.length ? httpEachCommand(list) : undefined }] as const;
    }),
  );
  // HTTPS over a kept connection is verified against the CA this machine holds (none: curl on the host, with the host's bundle).
  const caPems = localCaPems(inv);
  // Each host's questions in one round trip (one SSH channel, one sudo): its HTTP questions, its
  // certificates, its data disk, pgBackRest's info and its PostgreSQL, that last as it is the one
  // most likely to hang; each as root or as its own user.
  const tlsHosts = tlsOn(inv) ? inv.hosts.filter(usesTls) : [];
  // Each host's certificates as it last gave them: a host whose files have not changed only says so.
  const tlsCache = TlsFactsCache.open(inv.cluster.name, inv.hosts);
  const tlsKnown = new Map(tlsHosts.map((h) => [h.name, tlsCache.get(h.name, servicesOf(h))]));
  const infoHosts = inv.repositoryHost ? [inv.repositoryHost] : pg;
  // etcd's view from the first etcd host whose connection comes up, asked in that host's batch.
  let etcdFrom: string | undefined;
  const etcdHosts = inv.hostsWithRole('etcd');
  // Registered before the batches wait for their connections, so the host is chosen before its batch is sent.
  const etcdChosen = new Promise<string | undefined>((resolve) => {
    let left = etcdHosts.length;
    if (!left) resolve(undefined);
    for (const h of etcdHosts) {
      void conn(h.name).then((c) => {
        left--;
        if (c && etcdFrom === undefined) etcdFrom = h.name;
        if (etcdFrom !== undefined || left === 0) resolve(etcdFrom);
      });
    }
  });
  const etcdCommand = etcdStateCommand(inv);
  const asker = { cmd: statusAskerCommand(inv), display: 'status asker: python3 (etcd, TLS files, data disk)' };
  const batches = new Map<string, Batch>(
    inv.hosts.map((h) => {
      const httpCommand = http.get(h.name)!.command;
      const cmds: Partial<Record<Part, EachCommand>> = {
        ...(httpCommand ? { http: httpCommand } : {}),
        ...(tlsHosts.includes(h) ? { tls: tlsFactsCommand(servicesOf(h), tlsKnown.get(h.name)?.id) } : {}),
        // As root, in the batch's own shell: a statfs needs no user of its own (a user switch cost more than the stat).
        ...(h.roles.has('postgres') ? { disk: { cmd: dataDiskArgv(inv), display: 'data disk' } } : {}),
        // A shared repository path: pgBackRest runs on the database hosts.
        ...(infoHosts.includes(h) ? { info: { cmd: pgbackrestArgv(inv, INFO_ARGS), user: inv.repositoryHost ? REPO_USER : 'postgres', timeoutMs: PART_MS } } : {}),
        // Only on the etcd host chosen (etcdFrom), known once the connections are up.
        ...(h.roles.has('etcd') ? { etcd: { cmd: etcdCommand.cmd, display: etcdCommand.display, user: etcdCommand.user, check: false } } : {}),
        ...(h.roles.has('postgres') ? { psql: { ...sqlLocalCommand(inv, LOCAL_SQL), timeoutMs: PART_MS } } : {}),
      };
      const keys = Object.keys(cmds) as Part[];
      if (!keys.length) return [h.name, undefined];
      const asked = on(h.name, 'questions', async (c) => {
        // PostgreSQL on a psql kept open between calls where the connection can (a kept one), beside the batch.
        const sql = cmds.psql ? c.sqlKept?.(sqlSessionCommand(inv), LOCAL_SQL, { timeoutMs: PART_MS })?.catch((err: Error) => err) : undefined;
        // A database host's etcd, TLS files and data disk from its kept asker (asker.ts), where the connection keeps one.
        const known = tlsKnown.get(h.name);
        const question: AskerQuestion = {
          ...(cmds.etcd && etcdFrom === h.name ? { etcd: true } : {}),
          ...(cmds.tls && known ? { tls: { files: tlsIdentityFiles(servicesOf(h)), known: known.id } } : {}),
          ...(cmds.disk ? { disk: diskQuestion(inv) } : {}),
        };
        const byAsker = Object.keys(question) as Part[];
        const fromAsker = h.roles.has('postgres') ? c.sqlKept?.({ cmd: asker.cmd, user: 'root' }, JSON.stringify(question), { timeoutMs: QUESTION_MS, display: `${asker.display} <<< ${JSON.stringify(question)}` })?.catch((err: Error) => err) : undefined;
        // Its URLs over the kept connection itself, where it can (no curl on the host).
        const q = http.get(h.name)!;
        const ca = q.urls.some((u) => u.startsWith('https://')) ? await caPems : undefined;
        const web = q.urls.length > 0 && (!ca || ca.length > 0) ? c.httpKept?.(q.urls, { ca, timeoutMs: HTTP_MS }) : undefined;
        const parts = keys.filter((k) => (k !== 'etcd' || etcdFrom === h.name) && (k !== 'psql' || !sql) && (k !== 'http' || !web) && !(fromAsker && byAsker.includes(k)));
        const results = parts.length ? await c.runEach(parts.map((k) => cmds[k]!), { timeoutMs: QUESTION_MS }) : [];
        const answers = new Map<Part, RunResult | Error>(parts.map((k, i) => [k, results[i]]));
        if (sql) answers.set('psql', await sql);
        if (fromAsker) {
          const got = await fromAsker;
          // A timeout is the answer (something there hangs); anything else the asker did not answer (no
          // Python, a TLS file changed) the batch asks, as without a kept connection.
          const told: Partial<Record<Part, RunResult>> = got instanceof Error ? {} : readAskerAnswer(got.stdout);
          for (const k of byAsker) {
            const answer = told[k] ?? (got instanceof CommandTimedOut ? got : undefined);
            if (answer) answers.set(k, answer);
          }
          const again = byAsker.filter((k) => !answers.has(k));
          if (again.length) (await c.runEach(again.map((k) => cmds[k]!), { timeoutMs: QUESTION_MS })).forEach((r, i) => answers.set(again[i], r));
        }
        let got = web && (await web).map((a, i) => ('error' in a ? new RemoteError(`GET ${q.urls[i]} from ${h.name}: ${a.error}`) : a));
        // The host's sshd forwards nothing (AllowTcpForwarding no): curl on the host asks, as without a kept connection.
        if (got?.some((a) => a instanceof RemoteError && /administratively prohibited/i.test(a.message))) {
          got = undefined;
          answers.set('http', (await c.runEach([cmds.http!], { timeoutMs: QUESTION_MS }))[0]);
        }
        return { answers, http: got };
      });
      return [h.name, asked.then((a) => ('ok' in a ? { ok: a.ok.answers, http: a.ok.http } : a))];
    }),
  );
  const batchAnswer = <T>(name: string, key: Part, parse: (r: RunResult) => T) => partAnswer(batches.get(name), key, parse);
  // One URL's answer, over the kept connection or from the host's curl (its failure, a RemoteError, is this answer's error).
  const httpAnswer = async <T>(name: string, key: 'cluster' | 'self' | 'stats', parse: (r: HttpResult) => T) => {
    const q = http.get(name)!;
    const pick = (answers: (HttpResult | RemoteError)[]) => {
      const answer = answers[q.keys.indexOf(key)];
      if (answer instanceof Error) throw answer;
      return parse(answer);
    };
    const all = await batches.get(name)!;
    if ('ok' in all && all.http) {
      try {
        return { ok: pick(all.http) };
      } catch (err) {
        return { error: message(err) };
      }
    }
    return batchAnswer(name, 'http', (r) => pick(q.command!.read(name, r)));
  };
  const patroni = Promise.all(pg.map((h) => httpAnswer(h.name, 'cluster', (r) => clusterAnswer(h, r))));
  const self = Promise.all(pg.map((h) => httpAnswer(h.name, 'self', selfAnswer)));
  const local = Promise.all(pg.map((h) => batchAnswer(h.name, 'psql', (r) => JSON.parse(r.stdout) as LocalPostgres)));
  const dataDisk = Promise.all(pg.map((h) => batchAnswer(h.name, 'disk', (r) => parseDataDisk(r.stdout))));
  const etcd = (async () => {
    const from = await etcdChosen;
    if (!from) return { error: 'no etcd host is reachable' };
    const a = await batchAnswer(from, 'etcd', (r) => readEtcdState(inv, r));
    const healthy = (members: EtcdMemberState[]) => members.filter((m) => m.healthy).length;
    if ('ok' in a && healthy(a.ok) >= quorum(etcdHosts.length)) return { ok: { from, members: a.ok } };
    // Before etcd is called down, the other etcd hosts are asked: the asker's own link or client
    // certificate (one from another CA) makes every member look unhealthy from there alone.
    const others = await Promise.all(
      etcdHosts
        .filter((h) => h.name !== from)
        .map(async (h) => {
          const b = await on(h.name, 'etcd state', (c) => c.run(etcdCommand.cmd, { user: etcdCommand.user, sudo: etcdCommand.sudo, display: etcdCommand.display, check: false, timeoutMs: QUESTION_MS }));
          return 'ok' in b ? { from: h.name, members: readEtcdState(inv, b.ok) } : undefined;
        }),
    );
    const views = [...('ok' in a ? [{ from, members: a.ok }] : []), ...others.filter((v) => v !== undefined)];
    const best = views.reduce<(typeof views)[number] | undefined>((x, v) => (!x || healthy(v.members) > healthy(x.members) ? v : x), undefined);
    return best ? { ok: best } : { error: 'error' in a ? a.error : 'no answer' };
  })();
  const haproxy = Promise.all(proxies.map((h) => httpAnswer(h.name, 'stats', (r) => parseHaproxyCsv(r.body))));
  const backups = (async () => {
    const answers = await Promise.all(infoHosts.map((h) => batchAnswer(h.name, 'info', (r) => parseInfo(r.stdout, inv.pgbackrest.stanza))));
    // A shared repository: the first database host that answers.
    return answers.find((a) => 'ok' in a) ?? answers[0];
  })();
  const tls = (async () => {
    const cas = (await caPems).map((pem) => new X509Certificate(pem));
    const rows = await Promise.all(
      tlsHosts.map((h) =>
        batchAnswer(h.name, 'tls', (r) => {
          let facts = r.stdout;
          if (tlsFactsSame(facts)) facts = tlsKnown.get(h.name)?.stdout ?? '';
          else if (tlsFactsIdentity(facts)) tlsCache.set(h.name, servicesOf(h), { id: tlsFactsIdentity(facts), stdout: facts });
          return certificateRows(inv, h, parseTlsFacts(facts), cas, Date.now());
        }),
      ),
    );
    tlsCache.save();
    return rows;
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
