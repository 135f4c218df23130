// A host's SSH key before anyone trusts it: the handshake is ended as soon as the server shows
// its key, so nothing is authenticated and no command runs. For the operator to compare (its
// SHA256 fingerprint) before pgha records it (`pgha init`, `pgha replace`).
import { NodeSSH } from 'node-ssh';
import { PghaError } from '../errors.js';
import { describeConnectError } from './ssh.js';

/** The host key `address:port` offers (any algorithm ssh2 prefers); a connection failure is worded as apply words it (refused, no route, timed out, ...). */
export async function fetchHostKey(address: string, port: number, opts: { timeoutMs?: number } = {}): Promise<Buffer> {
  let seen: Buffer | undefined;
  const readyTimeout = opts.timeoutMs ?? 10_000;
  const ssh = new NodeSSH();
  try {
    // Refusing the key ends the handshake before any authentication is attempted.
    await ssh.connect({
      host: address,
      port,
      username: 'pgha',
      readyTimeout,
      hostVerifier: (key: Buffer) => {
        seen = key;
        return false;
      },
    });
  } catch (err) {
    if (!seen) throw new PghaError(describeConnectError(err, { address, port, user: 'pgha', connectTimeoutMs: readyTimeout }));
  } finally {
    ssh.connection?.on('error', () => {});
    ssh.dispose();
  }
  if (!seen) throw new PghaError(`${address}:${port}: the SSH server sent no host key`);
  return seen;
}
