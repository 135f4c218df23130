// What the lab tests ask a running cluster directly on its machines (not through pgha): a command
// on a host, SQL on a member's own PostgreSQL, Patroni's REST API and etcd over TLS (the default:
// verified against the cluster CA, etcd with the member's client certificate), Patroni's view of
// the members and the leader, a WAL segment archived now, verify until it passes. The lab reads its settings from the environment
// at every call, so a test file that sets up its own lab (trixie.test.ts) can use these too.
import assert from 'node:assert/strict';
import * as lab from '../lab/lab.js';
import { pgha } from '../helpers.js';
import { CA_BUNDLE, certFile, keyFile } from '../../src/components/tls/paths.js';

/** The lab cluster's database hosts. */
export const DB = ['node1', 'node2', 'node3'];

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A command on a lab machine; its stdout, trimmed (a failure fails the test). */
export async function sh(host: string, cmd: string, input?: string): Promise<string> {
  const r = await lab.ssh(host, cmd, { timeoutMs: 60_000, input });
  assert.equal(r.code, 0, `${host}: ${cmd}: ${r.stderr}`);
  return r.stdout.trim();
}

/** SQL on a member's own PostgreSQL as postgres (over stdin: no quoting). */
export const psql = (host: string, sql: string) => sh(host, 'sudo -u postgres psql -XAtq -v ON_ERROR_STOP=1', sql);

export interface Member {
  name: string;
  role: string;
  state: string;
  timeline?: number;
}

/** Patroni's REST API URL of a lab host (https: the lab runs TLS, the default). */
export const restUrl = (host: string, path: string) => `https://${lab.machineAddress(host)}:8008${path}`;

/** curl on a lab host verifying the cluster's certificates (the CA every host trusts). */
export const curlTls = `curl -sS --cacert ${CA_BUNDLE}`;

/** GET a path of `host`'s Patroni REST API, asked on `from` (default: the host itself); the body. */
export const patroniGet = (host: string, path: string, from = host) => sh(from, `${curlTls} --max-time 5 ${restUrl(host, path)}`);

/**
 * etcdctl (v3) on an etcd host of the lab against `endpoints` (names of lab hosts; default: itself)
 * over TLS, with that member's client certificate (its key is etcd's own: run as etcd).
 */
export function etcdctl(host: string, args: string, endpoints: string[] = [host]): Promise<string> {
  const urls = endpoints.map((h) => `https://${lab.machineAddress(h)}:2379`).join(',');
  return sh(host, `sudo -u etcd env ETCDCTL_API=3 etcdctl --endpoints=${urls} --cacert=${CA_BUNDLE} --cert=${certFile('etcd')} --key=${keyFile('etcd')} ${args}`);
}

/** Patroni's members, from the first database host whose REST API answers (over TLS, the default: verified against the cluster CA). */
export async function members(): Promise<Member[]> {
  for (const h of DB) {
    const r = await lab.ssh(h, `${curlTls} --max-time 3 ${restUrl(h, '/cluster')}`, { timeoutMs: 15_000 });
    if (r.code === 0) return (JSON.parse(r.stdout) as { members: Member[] }).members;
  }
  throw new Error('no Patroni REST API answers');
}

/** The one leader (two or none fail the test). */
export async function leader(): Promise<string> {
  const ls = (await members()).filter((m) => m.role === 'leader');
  assert.equal(ls.length, 1, `leaders: ${JSON.stringify(ls)}`);
  return ls[0].name;
}

/**
 * pgha's archive_command wrapper run as PostgreSQL's archiver runs it (as postgres) on the leader
 * and on a replica, on a copy of a segment both have (archived already: pushing it again is a no-op
 * for pgBackRest). The wrapper asks etcd who holds the leader key: the leader pushes; the replica
 * is told "not archived yet" (exit 1), naming the leader.
 */
export async function assertArchiveCommandAsksLeaderKey(): Promise<void> {
  const now = await leader();
  const replica = DB.find((h) => h !== now)!;
  const seg = await archiveNow(now);
  const push = async (host: string) => {
    const r = await lab.ssh(
      host,
      `pgdata=$(sudo -u postgres psql -XAtc 'show data_directory') && d=$(mktemp -d) && chmod 755 "$d" && ` +
        `sudo cp "$pgdata/pg_wal/${seg}" "$d/" && sudo chown postgres "$d/${seg}" && ` +
        `cd /tmp && sudo -u postgres /usr/local/lib/pgha/pgbackrest-archive-push "$d/${seg}"; rc=$?; sudo rm -rf "$d"; exit $rc`,
      { timeoutMs: 60_000 },
    );
    return { code: r.code, err: r.stderr.trim() };
  };
  const fromReplica = await push(replica);
  assert.equal(fromReplica.code, 1, fromReplica.err);
  assert.equal(
    fromReplica.err,
    `pgha archive-push: ${seg}: this member (${replica}) does not hold the leader key (${now} does) and no newer timeline is in the archive yet; not archived yet`,
  );
  const fromLeader = await push(now);
  assert.equal(fromLeader.code, 0, fromLeader.err);
}

/** Completes the current WAL segment on the leader and waits until pgBackRest has archived it; its name. */
export async function archiveNow(host: string): Promise<string> {
  // A commit first: with no WAL written since the last switch, pg_switch_wal does nothing and
  // names the segment in use, which then waits for the next switch (seen on an idle cluster).
  await psql(host, 'select txid_current()');
  const seg = await psql(host, 'select pg_walfile_name(pg_switch_wal())');
  for (let i = 0; i < 60; i++) {
    if ((await psql(host, "select coalesce(last_archived_wal, '') from pg_stat_archiver")) >= seg) return seg;
    await sleep(1000);
  }
  // Why not: what PostgreSQL's archiver and pgha's wrapper said last.
  const why = await lab.ssh(
    host,
    "sudo journalctl -u patroni --since '-90s' --no-pager | grep -E 'pgha archive-push|archive command|archiv' | tail -6; " +
      "echo '--- the archiver now:'; ps -eo pid,ppid,etimes,args --forest | grep -A4 '[a]rchiver'; " +
      "echo '--- ready:'; sudo sh -c 'ls $(sudo -u postgres psql -XAtc \"show data_directory\")/pg_wal/archive_status | grep ready'",
    { timeoutMs: 30_000 },
  );
  throw new Error(`${host}: ${seg} not archived after 60 s; the journal:\n${why.stdout.trim()}`);
}

/** `pgha verify` until it passes (HAProxy may need a few checks to see new roles), at most about a minute. */
export async function verified(inventory: string): Promise<void> {
  for (let i = 0; ; i++) {
    const v = await pgha(['verify', '-i', inventory]);
    if (v.code === 0) return;
    if (i >= 20) assert.fail(`verify failed:\n${v.stdout}${v.stderr}`);
    await sleep(3000);
  }
}

/** What a restart would change: each member's postmaster start time and its services' main PIDs. */
export async function processIdentity(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const h of DB) {
    out[`${h} postgres`] = await psql(h, 'select pg_postmaster_start_time()');
    for (const s of ['haproxy', 'etcd', 'patroni']) out[`${h} ${s}`] = await sh(h, `systemctl show -p MainPID --value ${s}`);
  }
  return out;
}
