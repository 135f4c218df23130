// What `pgha upgrade` changes on each host (pure): every component's software (the components'
// `upgrades`) together with the installed packages built from the same source (libpq5 and the
// client come with PostgreSQL's server), each to its pinned version or else to the newest version
// the host's sources offer; with --all, everything `apt-get upgrade` would do as well. Each change
// falls into a turn of the upgrade's order; what cannot be done (a pin the sources do not offer,
// a downgrade, a held package) is a problem the preflight reports.
import type { ComponentName } from '../components/types.js';
import { compareDebianVersions, newestVersion, type InstalledPackage } from '../components/base/apt.js';

/**
 * The upgrade's turns, in order: etcd members one at a time; HAProxy hosts one at a time; Patroni
 * itself under maintenance mode (PostgreSQL keeps running); PostgreSQL in a roll (replicas, a
 * switchover, the old leader: these changes need PostgreSQL restarted); the rest, host by host,
 * without restarting anything (pgBackRest, and a host's other packages off the database hosts).
 */
export const TURNS = ['etcd', 'haproxy', 'patroni', 'postgresql', 'host'] as const;
export type Turn = (typeof TURNS)[number];

export interface PackageChange {
  name: string;
  from: string;
  to: string;
  /** The inventory pins `to`. */
  pinned: boolean;
}

export interface HostUpgrade {
  host: string;
  turns: Partial<Record<Turn, PackageChange[]>>;
  /** Why this host cannot be upgraded as asked: "HOST: reason". */
  problems: string[];
}

export interface HostFacts {
  host: string;
  /** The host is a database host (its other packages are taken up by PostgreSQL's restart). */
  database: boolean;
  /** Per component, its software packages on this host (components' `upgrades`). */
  components: { component: ComponentName; packages: string[] }[];
  installed: Map<string, InstalledPackage>;
  /** Versions the host's sources offer, for every package considered. */
  offered: Map<string, string[]>;
  /** packages.versions. */
  pins: Record<string, string>;
  /** apt-mark hold. */
  held: Set<string>;
  /** --all: `apt-get -s upgrade`'s changes; null without --all. */
  others: { name: string; from: string; to: string }[] | null;
}

function turnOf(component: ComponentName, source: string): Turn {
  if (component === 'etcd') return 'etcd';
  if (component === 'haproxy') return 'haproxy';
  if (component === 'patroni') return source === 'patroni' ? 'patroni' : 'postgresql';
  return 'host';
}

/** The stack's packages on a host: each component package's whole installed source group, by turn (the names madison is asked about). */
export function stackPackages(f: Pick<HostFacts, 'components' | 'installed'>): { turns: Map<string, Turn>; missing: string[] } {
  const turns = new Map<string, Turn>();
  const missing: string[] = [];
  for (const { component, packages } of f.components) {
    for (const p of packages) {
      const pkg = f.installed.get(p);
      if (!pkg) {
        missing.push(p);
        continue;
      }
      for (const [name, other] of f.installed) if (other.source === pkg.source && !turns.has(name)) turns.set(name, turnOf(component, pkg.source));
    }
  }
  return { turns, missing };
}

/** Every package the plan considers on a host, for `apt-cache madison`. */
export function consideredPackages(f: Pick<HostFacts, 'components' | 'installed' | 'pins'>): string[] {
  const { turns } = stackPackages(f);
  return [...new Set([...turns.keys(), ...Object.keys(f.pins).filter((n) => f.installed.has(n))])].sort();
}

export function planHostUpgrade(f: HostFacts): HostUpgrade {
  const out: HostUpgrade = { host: f.host, turns: {}, problems: [] };
  const { turns, missing } = stackPackages(f);
  for (const p of missing) out.problems.push(`${f.host}: ${p} is not installed: run pgha apply first`);
  const rest: Turn = f.database ? 'postgresql' : 'host';
  // Pinned packages outside the stack (a library the operator pins) move to their pin too.
  for (const name of Object.keys(f.pins)) if (f.installed.has(name) && !turns.has(name)) turns.set(name, rest);
  const add = (name: string, turn: Turn, newest: string | undefined) => {
    const from = f.installed.get(name)?.version;
    if (!from) return;
    const pin = f.pins[name];
    const to = pin ?? newest;
    if (!to || to === from) return;
    const offered = f.offered.get(name);
    if (pin && offered && !offered.includes(pin)) {
      out.problems.push(`${f.host}: ${name} ${pin} (pinned) is not offered by the host's apt sources (offered: ${offered.join(', ') || 'none'})`);
      return;
    }
    if (compareDebianVersions(to, from) < 0) {
      if (pin) out.problems.push(`${f.host}: ${name} ${from} is installed, newer than the pin ${pin}: pgha never downgrades (pin ${from} or newer)`);
      return;
    }
    if (f.held.has(name)) {
      out.problems.push(`${f.host}: ${name} is held (apt-mark hold) at ${from}: apt-mark unhold ${name} first to upgrade it to ${to}`);
      return;
    }
    (out.turns[turn] ??= []).push({ name, from, to, pinned: pin !== undefined });
  };
  for (const [name, turn] of [...turns].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) add(name, turn, newestVersion(f.offered.get(name) ?? []));
  for (const o of f.others ?? []) if (!turns.has(o.name)) add(o.name, rest, o.to);
  return out;
}

/** Every change of a host, in turn order. */
export const hostChanges = (h: HostUpgrade): PackageChange[] => TURNS.flatMap((t) => h.turns[t] ?? []);

/** "postgresql-15 15.18-0+deb12u1 -> 15.20-0+deb12u1 (pinned)" */
export const changeText = (c: PackageChange) => `${c.name} ${c.from} -> ${c.to}${c.pinned ? ' (pinned)' : ''}`;

/** apt-get's arguments that make exactly these changes. */
export function installArgs(changes: PackageChange[]): string[] {
  return ['install', '-y', '--only-upgrade', '--no-install-recommends', ...changes.map((c) => `${c.name}=${c.to}`)];
}
