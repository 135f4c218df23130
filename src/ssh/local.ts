// Runs commands on this machine through `sh -c`, behind the same Connection interface
// (for a control node that is also a member, and for tests).
import { spawn } from 'node:child_process';
import { userInfo } from 'node:os';
import { CommandTimeout, RawResult, ShellConnection, ShellConnectionOptions } from './connection.js';
import type { HostTarget } from './target.js';

export function localTarget(overrides: Partial<HostTarget> = {}): HostTarget {
  return {
    name: 'localhost',
    address: '127.0.0.1',
    port: 0,
    user: userInfo().username,
    privateKeyPath: '',
    sudo: false,
    knownHostsPath: '',
    hostKeyPolicy: 'strict',
    connectTimeoutMs: 0,
    commandTimeoutMs: 120_000,
    ...overrides,
  };
}

export class LocalConnection extends ShellConnection {
  constructor(target: HostTarget = localTarget(), opts: ShellConnectionOptions = {}) {
    super(target, opts);
  }

  protected exec(text: string, stdin: string | undefined, timeoutMs: number): Promise<RawResult> {
    return new Promise((resolve, reject) => {
      // Its own process group, so a timeout kills the command's children too.
      const child = spawn('sh', ['-c', text], { detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => err.push(b));
      child.stdin.on('error', () => {}); // the command may exit without reading its input
      child.stdin.end(stdin ?? '');
      const timer =
        timeoutMs > 0
          ? setTimeout(() => {
              try {
                process.kill(-child.pid!, 'SIGKILL');
              } catch {
                // already gone
              }
              reject(new CommandTimeout());
            }, timeoutMs)
          : undefined;
      child.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
      });
    });
  }

  async close(): Promise<void> {}
}
