// Host key checking against an OpenSSH known_hosts file, the way `ssh` does it:
// plain host patterns (with * ? and !negation), `[host]:port` for other ports than 22,
// hashed `|1|salt|hash` names, and markers (@revoked refuses a key, @cert-authority is
// skipped: pgha does not use host certificates).
import { createHash, createHmac } from 'node:crypto';
import { appendFileSync, chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export interface KnownHostEntry {
  line: number; // 1-based, for messages
  marker: '' | 'revoked' | 'cert-authority';
  hosts: string; // the host field as written (patterns or a |1| hash)
  keyType: string;
  key: Buffer; // the raw public key blob
}

/** The key verdict for one host, from the entries of one file. */
export type HostKeyVerdict =
  | { status: 'match'; entry: KnownHostEntry }
  | { status: 'unknown' }
  | { status: 'changed'; entries: KnownHostEntry[] }
  | { status: 'revoked'; entry: KnownHostEntry };

/** Parses known_hosts text; lines that are not entries (comments, garbage) are skipped. */
export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  text.split('\n').forEach((raw, i) => {
    const fields = raw.trim().split(/\s+/);
    if (fields[0] === '' || fields[0].startsWith('#')) return;
    let marker: KnownHostEntry['marker'] = '';
    if (fields[0].startsWith('@')) {
      const m = fields.shift()!.slice(1);
      if (m !== 'revoked' && m !== 'cert-authority') return;
      marker = m;
    }
    const [hosts, keyType, b64] = fields;
    if (!hosts || !keyType || !b64 || !/^[A-Za-z0-9+/]+=*$/.test(b64)) return;
    entries.push({ line: i + 1, marker, hosts, keyType, key: Buffer.from(b64, 'base64') });
  });
  return entries;
}

/** The name ssh looks up: `host` on port 22, `[host]:port` otherwise. */
export function hostLookupName(host: string, port: number): string {
  const h = host.toLowerCase();
  return port === 22 ? h : `[${h}]:${port}`;
}

function globMatch(pattern: string, name: string): boolean {
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${re}$`).test(name);
}

/** Does an entry's host field name this host? */
export function hostFieldMatches(field: string, host: string, port: number): boolean {
  const name = hostLookupName(host, port);
  if (field.startsWith('|1|')) {
    const [, , salt, hash] = field.split('|');
    if (!salt || !hash) return false;
    const digest = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64');
    return digest === hash;
  }
  let matched = false;
  for (const p of field.toLowerCase().split(',')) {
    if (p.startsWith('!')) {
      if (globMatch(p.slice(1), name)) return false; // a negated match wins
    } else if (globMatch(p, name)) {
      matched = true;
    }
  }
  return matched;
}

/** The key type named inside a raw public key blob (its first SSH string). */
export function keyTypeOf(key: Buffer): string {
  if (key.length < 4) return '';
  const len = key.readUInt32BE(0);
  return key.subarray(4, 4 + len).toString('latin1');
}

/** `SHA256:<base64 without padding>`, the format of `ssh-keygen -lf`. */
export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

export function verifyHostKey(entries: KnownHostEntry[], host: string, port: number, key: Buffer): HostKeyVerdict {
  const forHost = entries.filter((e) => e.marker !== 'cert-authority' && hostFieldMatches(e.hosts, host, port));
  const revoked = forHost.find((e) => e.marker === 'revoked' && e.key.equals(key));
  if (revoked) return { status: 'revoked', entry: revoked };
  const known = forHost.filter((e) => e.marker === '');
  const match = known.find((e) => e.key.equals(key));
  if (match) return { status: 'match', entry: match };
  // Any other key recorded for this host means the host is not the one we met before.
  // (Connections ask only for key types already recorded, see preferredHostKeyAlgorithms.)
  if (known.length > 0) return { status: 'changed', entries: known };
  return { status: 'unknown' };
}

// known_hosts key types -> the ssh2 host key algorithms that produce them.
const ALGORITHMS: Record<string, string[]> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
};

/**
 * Host key algorithms to offer for a host already in the file: only those of the key types
 * recorded for it, so a server with several keys shows the one we know (as ssh does).
 * Undefined when the host is new (any algorithm).
 */
export function preferredHostKeyAlgorithms(entries: KnownHostEntry[], host: string, port: number): string[] | undefined {
  const types = entries
    .filter((e) => e.marker === '' && hostFieldMatches(e.hosts, host, port))
    .flatMap((e) => ALGORITHMS[e.keyType] ?? []);
  return types.length > 0 ? [...new Set(types)] : undefined;
}

export function readKnownHosts(path: string): KnownHostEntry[] {
  return existsSync(path) ? parseKnownHosts(readFileSync(path, 'utf8')) : [];
}

/** The line `ssh` with StrictHostKeyChecking=accept-new would add. */
export function knownHostsLine(host: string, port: number, key: Buffer): string {
  return `${hostLookupName(host, port)} ${keyTypeOf(key)} ${key.toString('base64')}`;
}

/** Appends a host's key (creating the file and its directory when missing). Synchronous on
 * purpose: parallel connections then never interleave their lines. */
export function appendKnownHost(path: string, host: string, port: number, key: Buffer): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const before = existsSync(path) ? readFileSync(path, 'utf8') : '';
  const sep = before === '' || before.endsWith('\n') ? '' : '\n';
  appendFileSync(path, `${sep}${knownHostsLine(host, port, key)}\n`, { mode: 0o600 });
}

/**
 * Records `key` as the only key of host:port: every plain entry that names the host (by its
 * address and port, as ssh looks it up; hashed ones too) is dropped, markers are kept, and the
 * new line appended. Written whole and atomically (a temporary file, then a rename), with the
 * file's mode (0600 for a new one). Returns the entries dropped.
 */
export function replaceKnownHost(path: string, host: string, port: number, key: Buffer): KnownHostEntry[] {
  const before = existsSync(path) ? readFileSync(path, 'utf8') : '';
  const entries = parseKnownHosts(before);
  const dropped = entries.filter((e) => e.marker === '' && hostFieldMatches(e.hosts, host, port));
  const drop = new Set(dropped.map((e) => e.line));
  const kept = before.split('\n').filter((_, i) => !drop.has(i + 1));
  while (kept.length && kept[kept.length - 1] === '') kept.pop();
  const text = [...kept, knownHostsLine(host, port, key)].join('\n') + '\n';
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const mode = existsSync(path) ? statSync(path).mode & 0o777 : 0o600;
  const tmp = `${path}.pgha-${process.pid}`;
  writeFileSync(tmp, text, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, path);
  return dropped;
}
