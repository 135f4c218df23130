// The Debian releases pgha supports, and THE release of a cluster: every host's /etc/os-release
// (a fact) read before anything is planned. One release per cluster: its PostgreSQL major, Patroni,
// etcd and pgBackRest versions all follow from it, and hosts of two releases are refused (see the
// README, "From Debian 12 to Debian 13"). What differs by release is chosen by each component from
// its own small table keyed by ReleaseName; this file only says which releases exist.
import { readOsRelease, type OsRelease } from '../../engine/index.js';
import { EXIT, PghaError } from '../../errors.js';
import type { Session } from '../../session/session.js';

export const RELEASE_NAMES = ['bookworm', 'trixie'] as const;
export type ReleaseName = (typeof RELEASE_NAMES)[number];

export interface Release {
  name: ReleaseName;
  /** Debian's version number. */
  version: number;
  /** For messages: "Debian 13 (trixie)". */
  label: string;
}

export const RELEASES: Record<ReleaseName, Release> = {
  bookworm: { name: 'bookworm', version: 12, label: 'Debian 12 (bookworm)' },
  trixie: { name: 'trixie', version: 13, label: 'Debian 13 (trixie)' },
};

const SUPPORTED = RELEASE_NAMES.map((n) => RELEASES[n].label).join(' and ');

/** Hosts pgha cannot plan for: another OS or release, or two releases in one cluster. Nothing was changed (exit 2). */
export class ReleaseError extends PghaError {
  constructor(message: string) {
    super(message, EXIT.badInput);
  }
}

/** The supported release a host runs, or null (another OS, another Debian release). */
export function releaseOf(os: OsRelease): Release | null {
  if (os.id !== 'debian') return null;
  return (RELEASE_NAMES as readonly string[]).includes(os.codename) ? RELEASES[os.codename as ReleaseName] : null;
}

/** A release named by the operator (`pgha render --release`). */
export function releaseNamed(name: string): Release | null {
  const n = name.trim().toLowerCase();
  return Object.values(RELEASES).find((r) => r.name === n || String(r.version) === n) ?? null;
}

/**
 * Pure: the one release of the cluster's hosts (name -> os-release, in inventory order), or a
 * refusal that names every host that is not on it.
 */
export function clusterRelease(hosts: [string, OsRelease][]): Release {
  const unsupported = hosts.filter(([, os]) => !releaseOf(os));
  if (unsupported.length) {
    const which = unsupported.map(([name, os]) => `${name} runs ${os.prettyName}`).join('; ');
    throw new ReleaseError(`${which}: pgha supports ${SUPPORTED}`);
  }
  const by = new Map<ReleaseName, string[]>();
  for (const [name, os] of hosts) {
    const r = releaseOf(os)!;
    by.set(r.name, [...(by.get(r.name) ?? []), name]);
  }
  if (by.size > 1) {
    const which = [...by].map(([r, names]) => `${RELEASES[r].label} on ${names.join(', ')}`).join('; ');
    throw new ReleaseError(
      `the hosts run different Debian releases: ${which}. A cluster runs one release (PostgreSQL, Patroni, etcd and ` +
        "pgBackRest versions follow from it); to move a cluster from Debian 12 to 13, see \"From Debian 12 to Debian 13\" in pgha's README",
    );
  }
  const [name] = [...by.keys()];
  if (!name) throw new ReleaseError('no host to read a Debian release from');
  return RELEASES[name];
}

/** Every connected host's release, read at once: the cluster's one release, or a ReleaseError. */
export async function readClusterRelease(session: Session): Promise<Release> {
  const conns = [...session.conns.values()];
  const found = await Promise.all(conns.map(async (c) => [c.target.name, await readOsRelease(c)] as [string, OsRelease]));
  const order = session.inv.hosts.map((h) => h.name);
  return clusterRelease(found.sort((a, b) => order.indexOf(a[0]) - order.indexOf(b[0])));
}
