// TLS, before every other component: the cluster CA (made once on the operator's machine), on
// every host the CA bundle it trusts and a certificate per service that speaks TLS (etcd's,
// PostgreSQL's, which Patroni shares, and on the backup repository host pgBackRest's, an etcd
// client), each made from a key that never leaves its host. Running
// services pick up what changed, one host at a time (etcd restarted, Patroni reloaded, HAProxy
// reloaded). A running cluster that still speaks clear text is then moved to TLS
// (src/cluster/tls-conversion.ts). verify and status check every certificate.
import { X509Certificate } from 'node:crypto';
import { directory, file, type StageResult } from '../../engine/index.js';
import { InputError, PghaError } from '../../errors.js';
import type { Inventory } from '../../inventory/index.js';
import type { Session } from '../../session/session.js';
import { convertToTls, etcdConfigState, patroniConfigState, refuseTlsOff, runningInClearText } from '../../cluster/tls-conversion.js';
import { HEADER } from '../../render/template.js';
import { ETCD_CONFIG } from '../etcd/index.js';
import { HAPROXY_CONFIG, reloadAndWait } from '../haproxy/index.js';
import { PATRONI_CONFIG } from '../patroni/paths.js';
import { restartMembersOneByOne } from '../etcd/actions.js';
import { currentLeader } from '../patroni/cluster.js';
import { reloadMember } from '../patroni/actions.js';
import { repoUserOps } from '../pgbackrest/index.js';
import { check, type ApplyContext, type Component } from '../types.js';
import { createCa, loadClusterCa, loadNextCa, type Ca } from './ca.js';
import { readTlsFacts, type HostTls } from './facts.js';
import { splitPems } from './inspect.js';
import { certificateOp } from './issue.js';
import { CA_BUNDLE, caPaths, servicesOf, TLS_DIR, tlsOn, usesTls, type TlsService } from './paths.js';

export { usesTls };
import { certificateRows, rowProblem } from './report.js';


export const TLS_OFF_WARNING =
  'tls is false: etcd, Patroni\'s REST API and PostgreSQL speak clear text, and anyone who reaches the hosts\' network can write to etcd (and so pick the primary) and read the REST API password off the wire';

/** The CA bundle's text: the cluster CA, and the new one while a rotation is under way. */
export const bundleOf = (cas: (Ca | null | undefined)[]) => cas.filter((c): c is Ca => !!c).map((c) => c.certPem).join('');

const fingerprints = (pems: string[]) => new Set(pems.map((p) => new X509Certificate(p).fingerprint256));

/** Every host's TLS facts, each read once (memoized). */
export function tlsFactsOf(session: Session): (host: string) => Promise<HostTls> {
  const cache = new Map<string, Promise<HostTls>>();
  return (name) => {
    let p = cache.get(name);
    if (!p) {
      p = readTlsFacts(session.conn(name), servicesOf(session.inv.host(name)));
      cache.set(name, p);
    }
    return p;
  };
}

/**
 * The CA certificates and keys for this run: the cluster CA (made now if this is the first TLS
 * run, which the hosts' bundles must confirm: a host that already trusts a CA while the local
 * files are missing means they were lost, and making a new one would re-issue everything
 * behind the operator's back), and the new CA of a rotation under way.
 */
export async function clusterCas(inv: Inventory, hostBundles: (string | null)[], opts: { create: boolean; say: (s: string) => void }): Promise<{ ca: Ca | null; next: Ca | null }> {
  const paths = caPaths(inv);
  let ca = await loadClusterCa(inv);
  const next = await loadNextCa(inv);
  const onHosts = hostBundles.flatMap((b) => (b ? splitPems(b) : []));
  if (!ca) {
    if (onHosts.length) {
      const seen = new X509Certificate(onHosts[0]);
      throw new InputError(
        `the hosts trust a CA (${seen.subject.replace(/\n/g, ', ')}; SHA256 ${seen.fingerprint256}) but the cluster CA's files are not at ${paths.cert} and ${paths.key}: ` +
          'restore them from your backup (beside the secrets file); if they are lost for good, pgha tls renew --ca moves every host to a new CA',
      );
    }
    if (!opts.create) {
      opts.say(`would make the cluster CA: ${paths.cert} (its key ${paths.key}, mode 0600)`);
      return { ca: null, next };
    }
    ca = await createCa(inv, paths.cert, paths.key);
    opts.say(`made the cluster CA: ${paths.cert} (its key ${paths.key}, mode 0600; keep both with the secrets file)`);
  } else if (onHosts.length) {
    const ours = fingerprints([ca.certPem, ...(next ? [next.certPem] : [])]);
    const foreign = [...fingerprints(onHosts)].filter((f) => !ours.has(f));
    if (foreign.length === fingerprints(onHosts).size) {
      throw new InputError(
        `the hosts trust another CA than the cluster CA at ${paths.cert} (SHA256 ${ca.cert.fingerprint256}): is the inventory's secrets file the one this cluster was deployed with? ` +
          'To move the hosts to this CA on purpose: pgha tls renew --ca',
      );
    }
  }
  return { ca, next };
}

async function prepare(ctx: ApplyContext): Promise<void> {
  const { session, rollout } = ctx;
  const { inv } = session;
  const conns = [...session.conns.values()].filter((c) => usesTls(inv.host(c.target.name)));
  if (!tlsOn(inv)) {
    await refuseTlsOff(ctx);
    ctx.notes.push(`WARNING: ${TLS_OFF_WARNING}`);
    return;
  }
  const facts = tlsFactsOf(session);
  const bundles = await Promise.all(conns.map(async (c) => (await facts(c.target.name)).bundle));
  const { ca, next } = await clusterCas(inv, bundles, { create: !rollout.check, say: (s) => rollout.reporter.progress('tls', s) });
  if (next) ctx.notes.push(`a CA rotation is under way (the new CA: ${caPaths(inv).nextCert}): hosts trust both CAs until pgha tls renew --ca finishes it`);
  const signer = next ?? ca;
  const issued: { host: string; service: TlsService }[] = [];
  const result = await rollout.stage('tls', conns, (conn) => {
    const h = inv.host(conn.target.name);
    return [
      directory('/etc/pgha', { owner: 'root', group: 'root', mode: 0o755 }),
      directory(TLS_DIR, { owner: 'root', group: 'root', mode: 0o755 }),
      ...(ca ? [file(CA_BUNDLE, bundleOf([ca, next]), { owner: 'root', group: 'root', mode: 0o644 })] : []),
      // pgBackRest's key belongs to its user, made here as the pgbackrest stage makes it.
      ...(servicesOf(h).includes('pgbackrest') ? repoUserOps() : []),
      ...servicesOf(h).map((s) =>
        certificateOp(inv, h, s, {
          signer: async () => signer ?? Promise.reject(new PghaError('no cluster CA')),
          trusted: [ca, next].filter((c): c is Ca => !!c).map((c) => c.cert),
          facts: () => facts(h.name),
          onIssued: (host, service) => issued.push({ host, service }),
        }),
      ),
    ];
  });
  // A cluster still (partly) in clear text takes up its certificates while it moves to TLS.
  if (!rollout.check && !(await runningInClearText(ctx))) await pickUp(ctx, issued, bundleChanged(result));
  await convertToTls(ctx);
}

/** Hosts whose CA bundle this stage changed. */
function bundleChanged(result: StageResult): string[] {
  return result.hosts.filter((h) => h.ops.some((o) => o.describe === `file ${CA_BUNDLE}` && o.status === 'changed')).map((h) => h.host);
}

/**
 * Running services take up new certificates and a new CA bundle, one host at a time, the
 * Patroni leader last: etcd reads its CA bundle only when it starts (restarted; it loads its
 * own certificate on every handshake), Patroni reloads (its REST API certificate, and PostgreSQL's),
 * HAProxy reloads (it reads the CA of its checks when it starts). A service not running yet
 * reads them when it starts.
 */
export async function pickUp(ctx: Pick<ApplyContext, 'session' | 'rollout'>, issued: { host: string; service: TlsService }[], bundleHosts: string[]): Promise<void> {
  const { session, rollout } = ctx;
  const { inv } = session;
  const reporter = rollout.reporter;
  // Only a service that runs pgha's TLS config is asked over TLS and takes anything up (on a
  // fresh host Debian's own etcd and HAProxy run: the component stages replace them).
  const runsTls = async (name: string, path: string, tlsIn: (text: string) => boolean) => {
    const text = session.conns.has(name) ? await session.conn(name).readFile(path) : null;
    return text !== null && text.includes(HEADER) && tlsIn(text);
  };
  const only = async (names: string[], path: string, tlsIn: (text: string) => boolean) => {
    const ok = await Promise.all(names.map((n) => runsTls(n, path, tlsIn)));
    return names.filter((_, i) => ok[i]);
  };
  const etcdRestart = await only(
    inv.hostsWithRole('etcd').map((h) => h.name).filter((n) => bundleHosts.includes(n)),
    ETCD_CONFIG,
    (t) => etcdConfigState(t) === 'tls',
  );
  if (etcdRestart.length) await restartMembersOneByOne(session, etcdRestart, { reporter, why: 'new CA bundle' });
  const pgReload = await only([...new Set(issued.filter((i) => i.service === 'postgres').map((i) => i.host))], PATRONI_CONFIG, (t) => patroniConfigState(t) === 'tls');
  if (pgReload.length) {
    const leader = (await currentLeader(session).catch(() => undefined))?.name;
    for (const name of [...pgReload.filter((n) => n !== leader), ...pgReload.filter((n) => n === leader)]) {
      reporter.progress(name, 'reloading Patroni (new certificate for PostgreSQL and the REST API)');
      await reloadMember(inv, session.conn(name), inv.host(name));
    }
  }
  const haproxyReload = await only(inv.hostsWithRole('haproxy').map((h) => h.name).filter((n) => bundleHosts.includes(n)), HAPROXY_CONFIG, (t) => t.includes('check-ssl'));
  for (const name of haproxyReload) {
    reporter.progress(name, 'reloading HAProxy (new CA bundle for its checks)');
    await reloadAndWait(session, session.conn(name), reporter);
  }
}

export const tls: Component = {
  name: 'tls',
  packages: (inv, h) => (tlsOn(inv) && usesTls(h) ? ['openssl'] : []),
  prepare,
  // Every certificate where it is used: the cluster CA's, naming its host, not expiring within 30 days.
  verify: (session) =>
    tlsOn(session.inv)
      ? session.inv.hosts.filter((h) => usesTls(h) && session.conns.has(h.name)).map((h) =>
          check('tls', h.name, async () => {
            const { inv } = session;
            const [ca, next] = await Promise.all([loadClusterCa(inv).catch(() => null), loadNextCa(inv).catch(() => null)]);
            const facts = await readTlsFacts(session.conn(h.name), servicesOf(h));
            const rows = certificateRows(inv, h, facts, [ca, next].filter((c): c is Ca => !!c).map((c) => c.cert), Date.now());
            const bad = rows.map(rowProblem).filter((p): p is string => p !== null);
            if (bad.length) throw new PghaError(bad.join('; '));
            return rows.map((r) => `${r.service} until ${r.not_after?.slice(0, 10)}`).join(', ');
          }),
        )
      : [],
};
