// Which Patroni the database hosts run (a fact), and what follows from its version: the DCS
// section (etcd's v2 API below 3.0.3, see README "The DCS") and, in timing.ts, the timing rules it
// enforces. Also what each Debian release ships: its default PostgreSQL major and its Patroni.
import { InputError } from '../../errors.js';
import type { Session } from '../../session/session.js';
import type { ReleaseName } from '../base/release.js';
import type { Dcs } from '../types.js';

/**
 * Per Debian release: the PostgreSQL major a cluster gets when the inventory names none, the
 * Patroni Debian ships (assumed for planning while it is neither installed nor known to apt), and
 * the packages Patroni needs for etcd. Its etcd: and etcd3: DCS modules both import python3-etcd,
 * which Debian 13's patroni package does not pull in (its dependency on "python3-etcd |
 * python3-consul | ..." is met by python3-consul, a dependency of its own): without it Patroni
 * stops at once ("Can not find suitable configuration of distributed configuration store").
 */
export const PATRONI_RELEASES: Record<ReleaseName, { postgres: number; patroni: string; packages: string[] }> = {
  bookworm: { postgres: 15, patroni: '3.0.2', packages: ['patroni', 'python3-etcd'] },
  trixie: { postgres: 17, patroni: '4.0.7', packages: ['patroni', 'python3-etcd'] },
};

/** 3.0.2 (or a Debian version like 3.0.2-1) as 3_000_002, for comparisons. */
export function patroniVersionNumber(version: string): number {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(version.trim());
  if (!m) throw new InputError(`not a Patroni version: "${version}", expected e.g. 3.0.2`);
  return Number(m[1]) * 1e6 + Number(m[2]) * 1e3 + Number(m[3] ?? 0);
}

/** Patroni 3.0.2's `etcd3:` DCS can lose acknowledged writes after a partition (fixed in 3.0.3). */
export function dcsForPatroniVersion(version: string): Dcs {
  return patroniVersionNumber(version) < 3_000_003 ? 'etcd' : 'etcd3';
}

/** The Patroni versions of the database hosts; the DCS section follows the OLDEST. */
export interface PatroniVersions {
  dcs: Dcs;
  /** The oldest (it decides the DCS). */
  version: string;
  /** Every database host's, in inventory order. */
  versions: string[];
}

/** Pure: the DCS choice for these versions (none: the release's Patroni). */
export function patroniVersions(versions: string[], fallback: string): PatroniVersions {
  if (versions.length === 0) return { dcs: dcsForPatroniVersion(fallback), version: fallback, versions: [fallback] };
  const oldest = [...versions].sort((a, b) => patroniVersionNumber(a) - patroniVersionNumber(b))[0];
  return { dcs: dcsForPatroniVersion(oldest), version: oldest, versions };
}

/**
 * The Patroni of every database host: the installed version, or (check mode, nothing installed
 * yet) the version apt would install, or the release's.
 */
export async function detectPatroni(session: Session, release: ReleaseName): Promise<PatroniVersions> {
  const fallback = PATRONI_RELEASES[release].patroni;
  const versions = await Promise.all(
    session.withRole('postgres').map(async (conn) => {
      const r = await conn.run(['dpkg-query', '-W', '-f', '${Version}', 'patroni'], { sudo: false, check: false });
      if (r.code === 0 && r.stdout.trim()) return r.stdout.trim();
      const policy = await conn.run(['apt-cache', 'policy', 'patroni'], { sudo: false, check: false });
      return /Candidate: (\d[^\s]*)/.exec(policy.stdout)?.[1] ?? fallback;
    }),
  );
  return patroniVersions(versions, fallback);
}
