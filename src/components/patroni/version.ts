// Which Patroni the database hosts run (a fact), and what follows from its version: the DCS
// section (etcd's v2 API below 3.0.3, see README "The DCS") and the smallest ttl it accepts.
import { InputError } from '../../errors.js';
import type { Session } from '../../session/session.js';
import type { Dcs } from '../types.js';

/** Debian 12's Patroni, assumed for planning when it is neither installed nor known to apt. */
const DEFAULT_PATRONI_VERSION = '3.0.2';

/** 3.0.2 (or a Debian version like 3.0.2-1) as 3_000_002, for comparisons. */
function patroniVersionNumber(version: string): number {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(version.trim());
  if (!m) throw new InputError(`not a Patroni version: "${version}", expected e.g. 3.0.2`);
  return Number(m[1]) * 1e6 + Number(m[2]) * 1e3 + Number(m[3] ?? 0);
}

/** Patroni 3.0.2's `etcd3:` DCS can lose acknowledged writes after a partition (fixed in 3.0.3). */
export function dcsForPatroniVersion(version: string): Dcs {
  return patroniVersionNumber(version) < 3_000_003 ? 'etcd' : 'etcd3';
}

/**
 * Patroni 3.2 and later take 20 s as the smallest ttl: a shorter one (the balanced and fast
 * profiles) becomes 20, and unplanned failovers slow down accordingly. The note for apply, or null.
 */
export function patroniTtlNote(versions: string[], ttl: number): string | null {
  if (ttl >= 20) return null;
  const raising = versions.find((v) => patroniVersionNumber(v) >= 3_002_000);
  if (!raising) return null;
  return `Patroni ${raising} uses a ttl of at least 20 s: the inventory's ttl ${ttl} becomes 20, and an unplanned failover takes about 23 s`;
}

/**
 * The DCS section follows the OLDEST Patroni on the database hosts: the installed version, or
 * (check mode, nothing installed yet) the version apt would install.
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
  if (versions.length === 0) return { dcs: dcsForPatroniVersion(DEFAULT_PATRONI_VERSION), version: DEFAULT_PATRONI_VERSION, versions };
  const parsed = versions.map((v) => ({ v, dcs: dcsForPatroniVersion(v) }));
  const oldest = parsed.find((p) => p.dcs === 'etcd') ?? parsed[0];
  return { dcs: oldest.dcs, version: oldest.v, versions };
}
