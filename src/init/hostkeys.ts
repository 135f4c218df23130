// Interim host key helpers for `pgha init` (same signatures as src/ssh's; replaced by it once it lands).
import { createHash } from 'node:crypto';
import { NodeSSH } from 'node-ssh';

export function keyTypeOf(key: Buffer): string {
  if (key.length < 4) return '';
  return key.subarray(4, 4 + key.readUInt32BE(0)).toString('latin1');
}

/** `SHA256:<base64 without padding>`, the format of `ssh-keygen -lf`. */
export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

export function knownHostsLine(host: string, port: number, key: Buffer): string {
  const name = port === 22 ? host : `[${host}]:${port}`;
  return `${name} ${keyTypeOf(key)} ${key.toString('base64')}`;
}

/** What init needs from SSH: a host's key before trusting it, then a login that accepts only that key. */
export interface HostProbe {
  fetchKey(address: string, port: number): Promise<Buffer>;
  login(o: { address: string; port: number; user: string; privateKeyPath: string; key: Buffer }): Promise<void>;
}

export const sshProbe: HostProbe = {
  async fetchKey(address, port) {
    let seen: Buffer | undefined;
    const ssh = new NodeSSH();
    try {
      // Refusing the key ends the handshake before any authentication is attempted.
      await ssh.connect({
        host: address,
        port,
        username: 'pgha-init',
        readyTimeout: 10_000,
        hostVerifier: (key: Buffer) => {
          seen = key;
          return false;
        },
      } as Parameters<NodeSSH['connect']>[0]);
    } catch (err) {
      if (!seen) throw err;
    } finally {
      ssh.dispose();
    }
    if (!seen) throw new Error('no host key received');
    return seen;
  },
  async login({ address, port, user, privateKeyPath, key }) {
    const ssh = new NodeSSH();
    try {
      await ssh.connect({
        host: address,
        port,
        username: user,
        privateKeyPath,
        readyTimeout: 10_000,
        hostVerifier: (k: Buffer) => k.equals(key),
      } as Parameters<NodeSSH['connect']>[0]);
      ssh.connection?.on('error', () => {});
      const r = await ssh.execCommand('true');
      if (r.code !== 0) throw new Error(`a command failed (exit ${r.code})`);
    } finally {
      ssh.dispose();
    }
  },
};
