// Facts are read from the host, never assumed. Each kind is read for many names in one
// round trip and cached per host for the stage; an op that changes something invalidates
// what it touched. Ops declare what they need (Operation.needs) so the engine can read a
// host's facts up front in a few round trips instead of one per op.
import type { Connection } from '../ssh/index.js';

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

const SERVICE_FACTS = `for s in "$@"; do
  echo "$(systemctl is-active -- "$s" 2>/dev/null | head -n1) $(systemctl is-enabled -- "$s" 2>/dev/null | head -n1)"
done`;

/** Reads file state for many paths in one round trip. */
export async function readFileFacts(conn: Connection, paths: string[]): Promise<Map<string, FileFact>> {
  const facts = new Map<string, FileFact>();
  if (paths.length === 0) return facts;
  const r = await conn.run(['sh', '-c', FILE_FACTS, 'sh', ...paths], { display: `file facts: ${paths.join(' ')}` });
  for (const line of r.stdout.split('\n')) {
    const [idx, kind, owner, group, mode, sha] = line.split(' ');
    const path = paths[Number(idx) - 1];
    if (path === undefined) continue;
    if (kind === 'absent') facts.set(path, { exists: false });
    else facts.set(path, { exists: true, kind: kind as 'file', owner, group, mode: parseInt(mode, 8), ...(sha !== '-' ? { sha256: sha } : {}) });
  }
  return facts;
}

/** Installed version of each package, or null when not installed. */
export async function readPackageFacts(conn: Connection, names: string[]): Promise<Map<string, string | null>> {
  const facts = new Map<string, string | null>(names.map((n) => [n, null]));
  if (names.length === 0) return facts;
  // Exit 1 just means some package is unknown to dpkg: it is then not installed.
  const r = await conn.run(['dpkg-query', '-W', '-f=${Package}\\t${Version}\\t${db:Status-Abbrev}\\n', ...names], { check: false, sudo: false });
  for (const line of r.stdout.split('\n')) {
    const [name, version, status] = line.split('\t');
    // "ii " = wanted install, installed; names may carry an arch suffix in the query
    if (name && status?.startsWith('ii')) {
      for (const n of names) if (n === name || n.startsWith(`${name}:`)) facts.set(n, version);
    }
  }
  return facts;
}

export async function readServiceFacts(conn: Connection, names: string[]): Promise<Map<string, ServiceFact>> {
  const facts = new Map<string, ServiceFact>();
  if (names.length === 0) return facts;
  const r = await conn.run(['sh', '-c', SERVICE_FACTS, 'sh', ...names], { display: `service facts: ${names.join(' ')}` });
  const lines = r.stdout.split('\n');
  names.forEach((n, i) => {
    const [active, enabled] = (lines[i] ?? '').split(' ');
    facts.set(n, { active: active || 'unknown', enabled: enabled || 'not-found' });
  });
  return facts;
}

/** getent passwd/group entries (null: no such user or group). */
export async function readUserFacts(conn: Connection, users: string[], groups: string[] = []): Promise<{ users: Map<string, UserFact | null>; groups: Map<string, number | null> }> {
  const out = { users: new Map<string, UserFact | null>(users.map((u) => [u, null])), groups: new Map<string, number | null>(groups.map((g) => [g, null])) };
  const read = async (db: string, names: string[]) =>
    names.length === 0 ? [] : (await conn.run(['getent', db, ...names], { check: false, sudo: false })).stdout.split('\n').filter(Boolean);
  for (const line of await read('passwd', users)) {
    const [name, , uid, gid, , home, shell] = line.split(':');
    out.users.set(name, { name, uid: Number(uid), gid: Number(gid), home, shell });
  }
  for (const line of await read('group', groups)) {
    const [name, , gid] = line.split(':');
    out.groups.set(name, Number(gid));
  }
  return out;
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

  /** Reads everything requested that is not cached yet (one round trip per kind, in parallel). */
  async prefetch(req: FactRequest): Promise<void> {
    const missing = <T>(names: string[] | undefined, cache: Map<string, T>) => [...new Set(names ?? [])].filter((n) => !cache.has(n));
    const files = missing(req.files, this.files);
    const packages = missing(req.packages, this.packages);
    const services = missing(req.services, this.services);
    const users = missing(req.users, this.users);
    const groups = missing(req.groups, this.groups);
    await Promise.all([
      files.length && readFileFacts(this.conn, files).then((m) => m.forEach((v, k) => this.files.set(k, v))),
      packages.length && readPackageFacts(this.conn, packages).then((m) => m.forEach((v, k) => this.packages.set(k, v))),
      services.length && readServiceFacts(this.conn, services).then((m) => m.forEach((v, k) => this.services.set(k, v))),
      (users.length || groups.length) &&
        readUserFacts(this.conn, users, groups).then((r) => {
          r.users.forEach((v, k) => this.users.set(k, v));
          r.groups.forEach((v, k) => this.groups.set(k, v));
        }),
    ]);
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
