// A host's SSH key before anyone trusts it: the handshake is ended as soon as the server shows
// its key, so nothing is authenticated and no command runs. For the operator to compare (its
// SHA256 fingerprint) before pgha records it (`pgha init`, `pgha replace`).
import { NodeSSH } from 'node-ssh';
import { PghaError } from '../errors.js';

/** The host key `address:port` offers (any algorithm ssh2 prefers); a connection failure is thrown as it came. */
export async function fetchHostKey(address: string, port: number, opts: { timeoutMs?: number } = {}): Promise<Buffer> {
  let seen: Buffer | undefined;
  const ssh = new NodeSSH();
  try {
    // Refusing the key ends the handshake before any authentication is attempted.
    await ssh.connect({
      host: address,
      port,
      username: 'pgha',
      readyTimeout: opts.timeoutMs ?? 10_000,
      hostVerifier: (key: Buffer) => {
        seen = key;
        return false;
      },
    });
  } catch (err) {
    if (!seen) throw err;
  } finally {
    ssh.connection?.on('error', () => {});
    ssh.dispose();
  }
  if (!seen) throw new PghaError(`${address}:${port}: the SSH server sent no host key`);
  return seen;
}
