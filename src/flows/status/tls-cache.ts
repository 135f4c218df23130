// status's memory of each host's TLS facts between calls: the answer a host last gave and the
// identity of the files it read (see tlsFactsCommand). A host whose files are the same answers
// "same", and status reads its certificates from here instead of having them read again (openssl
// and cat on every host, each time, were a fifth of what status cost the hosts). The file holds
// certificates and public keys only (never a private key), in the user's private runtime directory.
import { createHash } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { privateRuntimeDir } from '../../ssh/keeper-protocol.js';

interface Remembered {
  id: string;
  stdout: string;
}

export class TlsFactsCache {
  private changed = false;

  private constructor(
    private readonly file: string | undefined,
    private readonly entries: Record<string, Remembered>,
  ) {}

  /** The cache of this cluster (by its name and the inventory's hosts); an empty one that is never written without a private directory. */
  static open(cluster: string, hosts: readonly { name: string; address: string }[], env: NodeJS.ProcessEnv = process.env): TlsFactsCache {
    const dir = privateRuntimeDir(env);
    const tag = createHash('sha256').update(JSON.stringify([cluster, hosts.map((h) => [h.name, h.address])])).digest('hex').slice(0, 16);
    const file = dir && join(dir, `status-tls-${tag}.json`);
    let entries: Record<string, Remembered> = {};
    try {
      if (file) entries = JSON.parse(readFileSync(file, 'utf8')) as Record<string, Remembered>;
    } catch {
      // None yet, or unreadable: every host is asked in full, and the file is written anew.
    }
    return new TlsFactsCache(file, entries);
  }

  /** What `host` said for these services last time. */
  get(host: string, services: readonly string[]): Remembered | undefined {
    const r = this.entries[`${host} ${services.join(',')}`];
    return r && typeof r.id === 'string' && typeof r.stdout === 'string' ? r : undefined;
  }

  set(host: string, services: readonly string[], value: Remembered): void {
    this.entries[`${host} ${services.join(',')}`] = value;
    this.changed = true;
  }

  /** Writes what changed (a new file renamed over the old: a status running beside this one reads a whole file). */
  save(): void {
    if (!this.file || !this.changed) return;
    const tmp = `${this.file}.${process.pid}`;
    try {
      writeFileSync(tmp, JSON.stringify(this.entries), { mode: 0o600 });
      renameSync(tmp, this.file);
    } catch {
      // A cache that cannot be written costs the next status a full answer, nothing more.
    }
  }
}
