// A local child process as a kept process's pipe (src/ssh/kept-process.ts), in place of an SSH
// channel: what the unit tests of the kept psql and of status's asker run their stand-ins on.
import { spawn } from 'node:child_process';
import type { ProcessPipe } from '../../../src/ssh/kept-process.js';

export function childPipe(command: string, args: string[]): ProcessPipe {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  return {
    write: (t) => child.stdin.write(t),
    onStdout: (l) => child.stdout.on('data', l),
    onStderr: (l) => child.stderr.on('data', l),
    onClose: (l) => child.on('close', l),
    close: () => child.kill('SIGKILL'),
  };
}
