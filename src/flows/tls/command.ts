// `pgha tls ca` and `pgha tls renew [--ca]`. ca: the cluster CA's certificate (PEM) for clients,
// read from beside the secrets file (no host contacted). renew: every host certificate re-issued
// from a new key made on its host; with --ca the CA itself is replaced, through a period where
// the hosts trust both CAs: (1) a new CA made, (2) every host trusts both, (3) every certificate
// re-issued by the new CA, (4) the old CA dropped. Services pick each change up one host at a
// time, the Patroni leader last (etcd restarted, Patroni and HAProxy reloaded; PostgreSQL keeps
// running). Each step is found from the files, so an interrupted rotation is finished by running
// the command again.
import { readFile } from 'node:fs/promises';
import { createReporter, file, Rollout, StageFailed } from '../../engine/index.js';
import { EXIT, InputError } from '../../errors.js';
import type { Inventory } from '../../inventory/index.js';
import { formatChecks, verifyCluster } from '../../components/index.js';
import { bundleOf, pickUp, tlsFactsOf, usesTls } from '../../components/tls/index.js';
import { createCa, loadClusterCa, loadNextCa, promoteNextCa, type Ca } from '../../components/tls/ca.js';
import { certificateOp } from '../../components/tls/issue.js';
import { CA_BUNDLE, caPaths, servicesOf, tlsOn, type TlsService } from '../../components/tls/paths.js';
import type { Session } from '../../session/session.js';
import { secretMasker } from '../../session/session.js';
import type { CommandContext } from '../context.js';

function requireTls(inv: Inventory): void {
  if (!tlsOn(inv)) throw new InputError('the inventory says tls: false: this cluster has no CA and no certificates (remove tls: false and run pgha apply)');
}

/** `pgha tls ca`: the CA certificate(s) clients should trust, PEM. During a rotation both. */
export async function ca(ctx: CommandContext): Promise<number> {
  const inv = await ctx.inventory();
  requireTls(inv);
  const p = caPaths(inv);
  // Only the certificates are read: the key stays untouched.
  const read = (path: string) => readFile(path, 'utf8').catch(() => null);
  const [cert, next] = await Promise.all([read(p.cert), read(p.nextCert)]);
  if (cert === null) throw new InputError(`no cluster CA at ${p.cert}: pgha apply makes it (beside the secrets file)`);
  ctx.out(cert + (next ?? ''));
  return EXIT.ok;
}

export interface RenewOptions {
  ca?: boolean;
  check?: boolean;
  verbose?: boolean;
}

type Issued = { host: string; service: TlsService }[];

/** The CA bundle on every TLS host, and every host certificate re-issued (renew) or kept; what changed is picked up. */
async function roll(session: Session, rollout: Rollout, name: string, o: { bundle: (Ca | null)[]; signer: Ca; trusted: Ca[]; renew: boolean }): Promise<void> {
  const { inv } = session;
  const conns = [...session.conns.values()].filter((c) => usesTls(inv.host(c.target.name)));
  const facts = tlsFactsOf(session);
  const issued: Issued = [];
  const result = await rollout.stage(name, conns, (conn) => {
    const h = inv.host(conn.target.name);
    return [
      file(CA_BUNDLE, bundleOf(o.bundle), { owner: 'root', group: 'root', mode: 0o644 }),
      ...servicesOf(h).map((s) =>
        certificateOp(inv, h, s, { signer: async () => o.signer, trusted: o.trusted.map((c) => c.cert), facts: () => facts(h.name), renew: o.renew, onIssued: (host, service) => issued.push({ host, service }) }),
      ),
    ];
  });
  if (rollout.check) return;
  const bundleHosts = result.hosts.filter((h) => h.ops.some((op) => op.describe === `file ${CA_BUNDLE}` && op.status === 'changed')).map((h) => h.host);
  // A new bundle is read by Patroni (its REST API's CA, PostgreSQL's connections) on a reload too.
  const reloadForBundle = bundleHosts.filter((n) => inv.host(n).roles.has('postgres')).map((host) => ({ host, service: 'postgres' as const }));
  await pickUp({ session, rollout }, [...issued, ...reloadForBundle], bundleHosts);
}

/** `pgha tls renew [--ca]`. */
export async function renew(ctx: CommandContext, opts: RenewOptions): Promise<number> {
  const inv = await ctx.inventory();
  requireTls(inv);
  const reporter = await createReporter({ verbose: opts.verbose, masker: secretMasker(inv), log: ctx.log });
  const started = Date.now();
  const current = await loadClusterCa(inv);
  const paths = caPaths(inv);
  if (!current) throw new InputError(`no cluster CA at ${paths.cert}: pgha apply makes it and the host certificates`);
  const session = await ctx.session({ reporter });
  const rollout = new Rollout({ check: opts.check, reporter });
  try {
    if (!opts.ca) {
      const next = await loadNextCa(inv);
      const signer = next ?? current;
      await roll(session, rollout, 'tls renew: new host certificates', { bundle: [current, next], signer, trusted: [current, ...(next ? [next] : [])], renew: true });
    } else {
      // 1. The new CA (kept if a rotation was interrupted after it was made).
      let next = await loadNextCa(inv);
      if (!next) {
        if (opts.check) ctx.out(`would make a new CA: ${paths.nextCert} (its key ${paths.nextKey}, mode 0600)\n`);
        else {
          next = await createCa(inv, paths.nextCert, paths.nextKey);
          ctx.out(`made the new CA: ${paths.nextCert} (its key ${paths.nextKey}, mode 0600)\n`);
        }
      }
      if (!next) {
        ctx.out('then: every host trusts both CAs; every host certificate re-issued by the new CA; the old CA dropped\n');
      } else {
        // 2. Both trusted everywhere, before any certificate of the new CA is shown to anyone.
        await roll(session, rollout, 'tls renew --ca: hosts trust the old and the new CA', { bundle: [current, next], signer: current, trusted: [current, next], renew: false });
        // 3. Every certificate from the new CA.
        await roll(session, rollout, 'tls renew --ca: host certificates from the new CA', { bundle: [current, next], signer: next, trusted: [next], renew: false });
        // 4. The old CA dropped: the new one is the cluster CA.
        await roll(session, rollout, 'tls renew --ca: the old CA dropped', { bundle: [next], signer: next, trusted: [next], renew: false });
        if (!opts.check) {
          await promoteNextCa(inv);
          ctx.out(`the new CA is the cluster CA: ${paths.cert} (the old one is gone; give clients the new one: pgha tls ca)\n`);
        }
      }
    }
    let code = rollout.finish();
    if (!opts.check) {
      const checks = await verifyCluster(session);
      ctx.out(`VERIFY\n${formatChecks(checks)}\n`);
      if (checks.some((c) => !c.ok)) code = EXIT.failed;
    }
    ctx.out(`tls renew${opts.ca ? ' --ca' : ''}${opts.check ? ' (check)' : ''} finished in ${((Date.now() - started) / 1000).toFixed(1)}s\n`);
    return code;
  } catch (err) {
    if (err instanceof StageFailed) rollout.finish();
    throw err;
  }
}
