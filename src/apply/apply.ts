// `pgha apply`: bare Debian hosts -> a verified HA cluster, in order, behind health gates:
// packages -> etcd -> pgBackRest's files -> Patroni (stanza once the leader runs) -> HAProxy ->
// pgBackRest check and first backup -> verify. Every step reads the host's
// state first and acts only on a difference, so a second run changes nothing.
import { Reporter, Rollout, StageFailed } from '../engine/index.js';
import { EXIT } from '../errors.js';
import { loadInventory, type Inventory } from '../inventory/index.js';
import { dcsForPatroniVersion, patroniTtlNote, renderHost, type Dcs, type RenderedFile } from '../render/index.js';
import { openSession, secretMasker, type Session } from '../cluster/session.js';
import { formatChecks, verifyCluster } from '../cluster/verify.js';
import type { ApplyContext } from './context.js';
import { baseOps } from './components/base.js';
import { etcdComponent } from './components/etcd.js';
import { patroniComponent } from './components/patroni.js';
import { haproxyComponent } from './components/haproxy.js';
import { pgbackrestComponent, pgbackrestSetup, stanzaStage } from './components/pgbackrest.js';

export interface ApplyOptions {
  check?: boolean;
  verbose?: boolean;
  acceptNewHostKeys?: boolean;
  out?: (text: string) => void;
}

/** Debian 12's Patroni, assumed for planning when it is neither installed nor known to apt. */
const DEFAULT_PATRONI_VERSION = '3.0.2';

/**
 * The DCS section for Patroni follows the OLDEST Patroni on the database hosts: the installed
 * version, or (check mode, nothing installed yet) the version apt would install.
 */
export async function detectDcs(session: Session): Promise<{ dcs: Dcs; version: string; versions: string[] }> {
  const versions = await Promise.all(
    session.withRole('postgres').map(async (conn) => {
      const r = await conn.run(['dpkg-query', '-W', '-f', '${Version}', 'patroni'], { sudo: false, check: false });
      if (r.code === 0 && r.stdout.trim()) return r.stdout.trim();
      const policy = await conn.run(['apt-cache', 'policy', 'patroni'], { sudo: false, check: false });
      return /Candidate: (\d[^\s]*)/.exec(policy.stdout)?.[1] ?? DEFAULT_PATRONI_VERSION;
    }),
  );
  const parsed = versions.map((v) => ({ v, dcs: dcsForPatroniVersion(v) }));
  const oldest = parsed.find((p) => p.dcs === 'etcd') ?? parsed[0];
  return { dcs: oldest.dcs, version: oldest.v, versions };
}

function renderAll(inv: Inventory, dcs: Dcs): Map<string, RenderedFile[]> {
  return new Map(inv.hosts.map((h) => [h.name, renderHost(inv, h.name, { dcs })]));
}

export async function runApply(inventoryFile: string, opts: ApplyOptions = {}): Promise<number> {
  const out = opts.out ?? ((t: string) => process.stdout.write(t));
  const inv = await loadInventory(inventoryFile);
  const reporter = new Reporter({ verbose: opts.verbose, masker: secretMasker(inv) });
  const started = Date.now();
  const session = await openSession(inv, { acceptNewHostKeys: opts.acceptNewHostKeys, reporter });
  const rollout = new Rollout({ check: opts.check, reporter });
  try {
    // The apt files and packages do not depend on the DCS choice.
    const early = renderAll(inv, 'etcd');
    await rollout.stage('packages', [...session.conns.values()], (conn) => baseOps(inv, inv.host(conn.target.name), early.get(conn.target.name)!));

    const { dcs, version, versions } = await detectDcs(session);
    out(`Patroni ${version}: DCS ${dcs === 'etcd' ? 'etcd (v2 API, compare-and-swap leader updates)' : 'etcd3'}\n`);
    const files = renderAll(inv, dcs);
    const ctx: ApplyContext = { session, rollout, dcs, files: (h) => files.get(typeof h === 'string' ? h : h.name) ?? [], notes: [], inventoryFile };
    const ttlNote = patroniTtlNote(versions, inv.timing.patroni.ttl);
    if (ttlNote) ctx.notes.push(ttlNote);

    await etcdComponent(ctx);
    // pgBackRest before PostgreSQL first starts, the stanza before the replicas' base backups
    // complete a WAL segment: archive-push works from the first segment on.
    let backrestChanged = await pgbackrestSetup(ctx);
    await patroniComponent(ctx, async () => void (backrestChanged += await stanzaStage(ctx)));
    await haproxyComponent(ctx);
    await pgbackrestComponent(ctx, backrestChanged);

    for (const note of ctx.notes) out(`note: ${note}\n`);
    let code = rollout.finish();
    if (!opts.check) {
      const checks = await verifyCluster(session);
      out(`VERIFY\n${formatChecks(checks)}\n`);
      if (checks.some((c) => !c.ok)) code = EXIT.failed;
    }
    out(`${opts.check ? 'check' : 'apply'} finished in ${((Date.now() - started) / 1000).toFixed(1)}s\n`);
    return code;
  } catch (err) {
    // The recap shows which host failed where; the error boundary prints the reason.
    if (err instanceof StageFailed) rollout.finish();
    throw err;
  } finally {
    await session.close();
  }
}

export async function runVerify(inventoryFile: string, opts: { out?: (text: string) => void } = {}): Promise<number> {
  const out = opts.out ?? ((t: string) => process.stdout.write(t));
  const inv = await loadInventory(inventoryFile);
  const session = await openSession(inv);
  try {
    const checks = await verifyCluster(session);
    out(`${formatChecks(checks)}\n`);
    return checks.some((c) => !c.ok) ? EXIT.failed : EXIT.ok;
  } finally {
    await session.close();
  }
}
