// What init needs from SSH: a host's key before anyone trusts it, then a login (through pgha's
// SSH transport) that accepts only the key the user confirmed.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultKeyPaths } from '../../session/session.js';
import { SshConnection } from '../../ssh/index.js';
import { fetchHostKey } from '../../ssh/host-key.js';
import { knownHostsLine } from '../../ssh/known-hosts.js';

export { fingerprint, keyTypeOf, knownHostsLine } from '../../ssh/known-hosts.js';

export interface HostProbe {
  fetchKey(address: string, port: number): Promise<Buffer>;
  /** Logs in (and runs `sudo -n true` unless the user is root); throws with the reason. privateKeyPath null: the agent, then ~/.ssh/id_*. */
  login(o: { name: string; address: string; port: number; user: string; privateKeyPath: string | null; home?: string; key: Buffer }): Promise<void>;
}

export const sshProbe: HostProbe = {
  fetchKey: (address, port) => fetchHostKey(address, port),
  async login({ name, address, port, user, privateKeyPath, home, key }) {
    // A known_hosts holding only the confirmed key, so the transport's strict check applies.
    const dir = mkdtempSync(join(tmpdir(), 'pgha-init-'));
    try {
      const knownHostsPath = join(dir, 'known_hosts');
      writeFileSync(knownHostsPath, `${knownHostsLine(address, port, key)}\n`, { mode: 0o600 });
      const conn = await SshConnection.connect({
        name,
        address,
        port,
        user,
        privateKeyPath: privateKeyPath ?? '',
        defaultKeyPaths: defaultKeyPaths(home),
        agentSocket: process.env.SSH_AUTH_SOCK || undefined,
        sudo: true,
        knownHostsPath,
        hostKeyPolicy: 'strict',
        connectTimeoutMs: 10_000,
        commandTimeoutMs: 30_000,
      });
      try {
        await conn.run('true'); // through sudo -n unless root: says so when sudo wants a password
      } finally {
        await conn.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
