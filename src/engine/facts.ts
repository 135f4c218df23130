// Facts are read from the host, never assumed. Each kind is a command plus a pure parser; every
// kind asked is read for many names in one round trip (one batch) and cached per host for the
// stage; an op that changes something invalidates what it touched. Ops declare what they need
// (Operation.needs) so the engine can read a host's facts up front in one round trip instead of
// one per op.
import type { Connection, EachCommand } from '../ssh/index.js';

export type FileFact =
  | { exists: false }
  | { exists: true; kind: 'file' | 'dir' | 'link' | 'other'; owner: string; group: string; mode: number; sha256?: string };

export interface ServiceFact {
  active: string; // systemctl is-active: active, inactive, failed, ...
  enabled: string; // systemctl is-enabled: enabled, disabled, static, masked, not-found
}

export interface UserFact {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

/** What an op reads, so all of a host's facts can be fetched before its ops run. */
export interface FactRequest {
  files?: string[];
  packages?: string[];
  services?: string[];
  users?: string[];
  groups?: string[];
}

const FILE_FACTS = `i=0
for p in "$@"; do
  i=$((i+1))
  if [ -L "$p" ]; then k=link; elif [ -f "$p" ]; then k=file; elif [ -d "$p" ]; then k=dir
  elif [ -e "$p" ]; then k=other; else echo "$i absent"; continue; fi
  h=-; if [ "$k" = file ]; then h=$(sha256sum <"$p" | cut -d' ' -f1); fi
  echo "$i $k $(stat -c '%U %G %a' -- "$p") $h"
done`;

/**
 * Every service's state from one `systemctl show` (a systemctl process costs a host about 15 ms of
 * CPU: two per service added up). Its ActiveState is what `is-active` prints, its UnitFileState
 * what `is-enabled` prints; a unit with no unit file has an empty UnitFileState (`is-enabled`:
 * nothing on stdout), read as not-found.
 */
export const SERVICE_SHOW = 'systemctl show -p ActiveState -p UnitFileState -- "$@" 2>/dev/null';

/** Pure: SERVICE_SHOW's output for `names` -> each one's state (one block per unit, in order, blank lines between). */
export function parseServiceShow(stdout: string, names: readonly string[]): Map<string, ServiceFact> {
  const blocks = stdout.split(/\n[ \t]*\n/).filter((b) => b.trim() !== '');
  return new Map(
    names.map((n, i) => {
      const props = new Map([...(blocks[i] ?? '').matchAll(/^(\w+)=(.*)$/gm)].map((m) => [m[1], m[2].trim()] as const));
      return [n, { active: props.get('ActiveState') || 'unknown', enabled: props.get('UnitFileState') || 'not-found' }];
    }),
  );
}

/** Pure: FILE_FACTS's output for `paths` -> each path's state. */
export function parseFileFacts(stdout: string, paths: readonly string[]): Map<string, FileFact> {
  const facts = new Map<string, FileFact>();
  for (const line of stdout.split('\n')) {
    const [idx, kind, owner, group, mode, sha] = line.split(' ');
    const path = paths[Number(idx) - 1];
    if (path === undefined) continue;
    if (kind === 'absent') facts.set(path, { exists: false });
    else facts.set(path, { exists: true, kind: kind as 'file', owner, group, mode: parseInt(mode, 8), ...(sha !== '-' ? { sha256: sha } : {}) });
  }
  return facts;
}

/** Pure: dpkg-query's lines -> the installed version of each name asked, or null when not installed. */
export function parsePackageFacts(stdout: string, names: readonly string[]): Map<string, string | null> {
  const facts = new Map<string, string | null>(names.map((n) => [n, null]));
  for (const line of stdout.split('\n')) {
    const [name, version, status] = line.split('\t');
    // "ii " = wanted install, installed; names may carry an arch suffix in the query
    if (name && status?.startsWith('ii')) {
      for (const n of names) if (n === name || n.startsWith(`${name}:`)) facts.set(n, version);
    }
  }
  return facts;
}

/** Pure: `getent passwd` lines -> each user asked (null: no such user). */
export function parseUserFacts(stdout: string, users: readonly string[]): Map<string, UserFact | null> {
  const out = new Map<string, UserFact | null>(users.map((u) => [u, null]));
  for (const line of stdout.split('\n').filter(Boolean)) {
    const [name, , uid, gid, , home, shell] = line.split(':');
    out.set(name, { name, uid: Number(uid), gid: Number(gid), home, shell });
  }
  return out;
}

/** Pure: `getent group` lines -> each group's id (null: no such group). */
export function parseGroupFacts(stdout: string, groups: readonly string[]): Map<string, number | null> {
  const out = new Map<string, number | null>(groups.map((g) => [g, null]));
  for (const line of stdout.split('\n').filter(Boolean)) {
    const [name, , gid] = line.split(':');
    out.set(name, Number(gid));
  }
  return out;
}

/** Adds what was read to a cache. */
function merge<T>(cache: Map<string, T>, read: Map<string, T>): void {
  read.forEach((v, k) => cache.set(k, v));
}

/** One kind of fact for many names: its command (a part of the host's batch) and what reads its answer. */
interface FactQuery {
  command: EachCommand;
  read: (stdout: string) => void;
}

/** A host's operating system, from /etc/os-release (os-release(5)). */
export interface OsRelease {
  /** ID, e.g. "debian". */
  id: string;
  /** VERSION_CODENAME, e.g. "trixie"; "" when the file has none (a testing image, another OS). */
  codename: string;
  /** VERSION_ID, e.g. "13"; "" when absent. */
  versionId: string;
  /** PRETTY_NAME, e.g. "Debian GNU/Linux 13 (trixie)", for messages. */
  prettyName: string;
}

/** Pure: the text of /etc/os-release -> its fields (shell-style assignments, values optionally quoted). */
export function parseOsRelease(text: string): OsRelease {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (!m) continue;
    let v = m[2].trim();
    const q = v[0];
    if ((q === '"' || q === "'") && v.endsWith(q) && v.length >= 2) v = v.slice(1, -1);
    // os-release(5): inside double quotes, \\ \$ \" and \` stand for the character itself.
    if (q === '"') v = v.replace(/\\([\\$"`])/g, '$1');
    fields.set(m[1], v);
  }
  return {
    id: fields.get('ID') ?? '',
    codename: fields.get('VERSION_CODENAME') ?? '',
    versionId: fields.get('VERSION_ID') ?? '',
    prettyName: fields.get('PRETTY_NAME') ?? fields.get('NAME') ?? 'an unknown system',
  };
}

/** The host's /etc/os-release (falling back to /usr/lib/os-release, as os-release(5) says). */
export async function readOsRelease(conn: Connection): Promise<OsRelease> {
  const r = await conn.run(['sh', '-c', 'cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release'], { sudo: false, check: false, display: 'os-release' });
  return parseOsRelease(r.code === 0 ? r.stdout : '');
}

/** The facts of one host, cached for a stage. */
export class Facts {
  private files = new Map<string, FileFact>();
  private packages = new Map<string, string | null>();
  private services = new Map<string, ServiceFact>();
  private users = new Map<string, UserFact | null>();
  private groups = new Map<string, number | null>();

  constructor(readonly conn: Connection) {}

  /** Reads everything requested that is not cached yet: every kind in one round trip (one batch). */
  async prefetch(req: FactRequest): Promise<void> {
    const missing = <T>(names: string[] | undefined, cache: Map<string, T>) => [...new Set(names ?? [])].filter((n) => !cache.has(n));
    const files = missing(req.files, this.files);
    const packages = missing(req.packages, this.packages);
    const services = missing(req.services, this.services);
    const users = missing(req.users, this.users);
    const groups = missing(req.groups, this.groups);
    const queries: FactQuery[] = [
      ...(files.length ? [{ command: { cmd: ['sh', '-c', FILE_FACTS, 'sh', ...files], display: `file facts: ${files.join(' ')}` }, read: (out: string) => merge(this.files, parseFileFacts(out, files)) }] : []),
      // Exit 1 just means some package is unknown to dpkg: it is then not installed.
      ...(packages.length ? [{ command: { cmd: ['dpkg-query', '-W', '-f=${Package}\\t${Version}\\t${db:Status-Abbrev}\\n', ...packages], check: false }, read: (out: string) => merge(this.packages, parsePackageFacts(out, packages)) }] : []),
      ...(services.length ? [{ command: { cmd: ['sh', '-c', SERVICE_SHOW, 'sh', ...services], display: `service facts: ${services.join(' ')}`, check: false }, read: (out: string) => merge(this.services, parseServiceShow(out, services)) }] : []),
      // getent exits 2 when a name is unknown: that name is then null.
      ...(users.length ? [{ command: { cmd: ['getent', 'passwd', ...users], check: false }, read: (out: string) => merge(this.users, parseUserFacts(out, users)) }] : []),
      ...(groups.length ? [{ command: { cmd: ['getent', 'group', ...groups], check: false }, read: (out: string) => merge(this.groups, parseGroupFacts(out, groups)) }] : []),
    ];
    if (!queries.length) return;
    const results = await this.conn.runEach(queries.map((q) => q.command));
    results.forEach((r, i) => {
      if (r instanceof Error) throw r;
      queries[i].read(r.stdout);
    });
  }

  /** Forgets cached facts (after an op changed them). */
  invalidate(req: FactRequest): void {
    req.files?.forEach((n) => this.files.delete(n));
    req.packages?.forEach((n) => this.packages.delete(n));
    req.services?.forEach((n) => this.services.delete(n));
    req.users?.forEach((n) => this.users.delete(n));
    req.groups?.forEach((n) => this.groups.delete(n));
  }

  clear(): void {
    for (const m of [this.files, this.packages, this.services, this.users, this.groups]) m.clear();
  }

  async file(path: string): Promise<FileFact> {
    await this.prefetch({ files: [path] });
    return this.files.get(path)!;
  }

  async package(name: string): Promise<string | null> {
    await this.prefetch({ packages: [name] });
    return this.packages.get(name)!;
  }

  async service(name: string): Promise<ServiceFact> {
    await this.prefetch({ services: [name] });
    return this.services.get(name)!;
  }

  async user(name: string): Promise<UserFact | null> {
    await this.prefetch({ users: [name] });
    return this.users.get(name)!;
  }

  async group(name: string): Promise<number | null> {
    await this.prefetch({ groups: [name] });
    return this.groups.get(name)!;
  }
}
