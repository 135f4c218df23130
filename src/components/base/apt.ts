// apt on the hosts: the versions the inventory pins (packages.versions: apt's preferences file, the
// drift check of apply), Debian's version order, and the package facts `pgha upgrade` plans from
// (installed packages with their source package, the versions the host's sources offer, what
// `apt-get upgrade` would do). Parsers and comparisons are pure; the facts are one command each.
import { PghaError } from '../../errors.js';
import type { Operation } from '../../engine/index.js';
import type { Connection } from '../../ssh/index.js';

/** pgha's apt preferences file: the pinned versions (apt reads files without an extension or with .pref). */
export const PINS_FILE = '/etc/apt/preferences.d/pgha.pref';

/**
 * Pin-Priority of a pinned version: above the archives' 500, so apt installs and keeps it, and
 * below 1000, so apt never downgrades a newer version installed (apt_preferences(5)).
 */
export const PIN_PRIORITY = 990;

// ---------------------------------------------------------------- Debian's version order

/** dpkg's order of one non-digit part: ~ before everything (even the end), letters before other characters. */
function charOrder(c: string | undefined): number {
  if (c === undefined) return 0;
  if (c === '~') return -1;
  if (/[A-Za-z]/.test(c)) return c.charCodeAt(0);
  return c.charCodeAt(0) + 256;
}

/** dpkg's verrevcmp: alternating non-digit and digit runs. */
function compareParts(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    // Non-digit prefix, character by character.
    while ((i < a.length && !/\d/.test(a[i])) || (j < b.length && !/\d/.test(b[j]))) {
      const ca = i < a.length && !/\d/.test(a[i]) ? a[i] : undefined;
      const cb = j < b.length && !/\d/.test(b[j]) ? b[j] : undefined;
      const d = charOrder(ca) - charOrder(cb);
      if (d !== 0) return d < 0 ? -1 : 1;
      i++;
      j++;
    }
    // Digit run, as a number (leading zeros do not count).
    let na = '';
    let nb = '';
    while (i < a.length && /\d/.test(a[i])) na += a[i++];
    while (j < b.length && /\d/.test(b[j])) nb += b[j++];
    na = na.replace(/^0+/, '');
    nb = nb.replace(/^0+/, '');
    if (na.length !== nb.length) return na.length < nb.length ? -1 : 1;
    if (na !== nb) return na < nb ? -1 : 1;
  }
  return 0;
}

/** -1, 0 or 1 as `dpkg --compare-versions a lt|eq|gt b`: [EPOCH:]UPSTREAM[-REVISION]. */
export function compareDebianVersions(a: string, b: string): number {
  const split = (v: string) => {
    const colon = v.indexOf(':');
    const epoch = colon > 0 ? Number(v.slice(0, colon)) : 0;
    const rest = colon > 0 ? v.slice(colon + 1) : v;
    const dash = rest.lastIndexOf('-');
    return { epoch, upstream: dash >= 0 ? rest.slice(0, dash) : rest, revision: dash >= 0 ? rest.slice(dash + 1) : '' };
  };
  const x = split(a);
  const y = split(b);
  if (x.epoch !== y.epoch) return x.epoch < y.epoch ? -1 : 1;
  return compareParts(x.upstream, y.upstream) || compareParts(x.revision, y.revision);
}

/** The newest of some versions (undefined for none). */
export function newestVersion(versions: string[]): string | undefined {
  return [...versions].sort(compareDebianVersions).at(-1);
}

/** "15.20" of "15.20-0+deb12u1" (and of "1:15.20-1"): what PostgreSQL's server_version starts with. */
export function upstreamVersion(v: string): string {
  const rest = v.includes(':') ? v.slice(v.indexOf(':') + 1) : v;
  const dash = rest.lastIndexOf('-');
  return dash >= 0 ? rest.slice(0, dash) : rest;
}

// ---------------------------------------------------------------- pins and drift

/** The preferences file's stanzas, in name order (the template writes them). */
export function pinStanzas(versions: Record<string, string>): { name: string; version: string; priority: number }[] {
  return Object.keys(versions)
    .sort()
    .map((name) => ({ name, version: versions[name], priority: PIN_PRIORITY }));
}

/** A pinned package installed at another version. */
export interface Drift {
  name: string;
  installed: string;
  pinned: string;
}

/** Pinned packages installed at another version (not installed at all is no drift: apply installs the pin). */
export function pinDrift(versions: Record<string, string>, installed: Map<string, string | null>): Drift[] {
  return Object.keys(versions)
    .sort()
    .flatMap((name) => {
      const v = installed.get(name);
      return v && v !== versions[name] ? [{ name, installed: v, pinned: versions[name] }] : [];
    });
}

/** What apply says about a drift: it leaves the package as it is. */
export function driftNote(host: string, d: Drift): string {
  const newer = compareDebianVersions(d.installed, d.pinned) > 0;
  return (
    `${host}: ${d.name} ${d.installed} is installed, the inventory pins ${d.pinned} (drift; apply leaves it): ` +
    (newer ? 'the installed version is newer: pin it in packages.versions (pgha never downgrades)' : '`pgha upgrade` moves it to the pin')
  );
}

/**
 * Reports every pinned package installed at another version (read-only, in check mode too): a
 * note per drift, never a change. apply installs missing packages at their pins; moving an
 * installed package is `pgha upgrade`'s job (replicas first, a switchover, the old leader).
 */
export function pinDriftOp(versions: Record<string, string>, note: (text: string) => void): Operation {
  const names = Object.keys(versions);
  return {
    describe: 'pinned package versions (packages.versions)',
    needs: { packages: names },
    async check(conn, facts) {
      const installed = new Map<string, string | null>();
      for (const n of names) installed.set(n, await facts.package(n));
      for (const d of pinDrift(versions, installed)) note(driftNote(conn.target.name, d));
      return null;
    },
    async apply() {},
  };
}

// ---------------------------------------------------------------- package facts for upgrades

export interface InstalledPackage {
  version: string;
  /** The source package it was built from (postgresql-15 for libpq5 and postgresql-client-15). */
  source: string;
}

/** `dpkg-query -W -f '${Package}\t${Version}\t${source:Package}\t${db:Status-Abbrev}\n'`: the installed ones. */
export function parseInstalled(stdout: string): Map<string, InstalledPackage> {
  const out = new Map<string, InstalledPackage>();
  for (const line of stdout.split('\n')) {
    const [name, version, source, status] = line.split('\t');
    if (name && version && status?.startsWith('ii')) out.set(name.replace(/:[a-z0-9]+$/, ''), { version, source: source || name });
  }
  return out;
}

/** Every installed package of a host, with its version and source package. */
export async function installedPackages(conn: Connection): Promise<Map<string, InstalledPackage>> {
  const r = await conn.run(['dpkg-query', '-W', '-f=${Package}\\t${Version}\\t${source:Package}\\t${db:Status-Abbrev}\\n'], { sudo: false, display: 'installed packages (dpkg-query)' });
  return parseInstalled(r.stdout);
}

/** `apt-cache madison NAMES`: the versions the host's sources offer, per package. */
export function parseMadison(stdout: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of stdout.split('\n')) {
    const [name, version, source] = line.split('|').map((s) => s.trim());
    // "Sources" lines are source packages, not installable versions.
    if (!name || !version || /\bSources$/.test(source ?? '')) continue;
    const list = out.get(name) ?? [];
    if (!list.includes(version)) list.push(version);
    out.set(name, list);
  }
  return out;
}

export async function offeredVersions(conn: Connection, names: string[]): Promise<Map<string, string[]>> {
  if (names.length === 0) return new Map();
  const r = await conn.run(['apt-cache', 'madison', ...names], { sudo: false, check: false, display: `versions offered (apt-cache madison ${names.join(' ')})` });
  return parseMadison(r.stdout);
}

/** `apt-get -s upgrade`'s "Inst NAME [OLD] (NEW ...)" lines: what `apt-get upgrade` would do. */
export function parseSimulatedUpgrade(stdout: string): { name: string; from: string; to: string }[] {
  const out: { name: string; from: string; to: string }[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^Inst (\S+) \[([^\]]+)\] \((\S+)/.exec(line);
    if (m) out.push({ name: m[1].replace(/:[a-z0-9]+$/, ''), from: m[2], to: m[3] });
  }
  return out;
}

export async function simulatedUpgrade(conn: Connection): Promise<{ name: string; from: string; to: string }[]> {
  const r = await conn.run(['apt-get', '-s', '-q', 'upgrade'], { sudo: false, check: false, display: 'what apt-get upgrade would do (apt-get -s upgrade)' });
  if (r.code !== 0) throw new PghaError(`${conn.target.name}: apt-get -s upgrade failed: ${conn.masker.mask(r.stderr).trim().split('\n').slice(-2).join(' ')}`);
  return parseSimulatedUpgrade(r.stdout);
}

/** Packages held with `apt-mark hold` (apt refuses to change them). */
export async function heldPackages(conn: Connection): Promise<Set<string>> {
  const r = await conn.run(['apt-mark', 'showhold'], { sudo: false, check: false });
  return new Set(r.stdout.split('\n').map((l) => l.trim()).filter(Boolean));
}
