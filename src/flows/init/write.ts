// All-or-nothing output: every file is first written to a temp file beside its target (same
// filesystem, so rename is atomic), checked, and only then renamed into place. On any failure or
// interruption the temp files are removed and no target is touched.
import { open, rename, unlink, mkdir } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';

export interface OutFile {
  path: string;
  content: string;
  /** Given to open() so the file never exists with a wider mode (secrets: 0o600). */
  mode: number;
}

export interface Staged {
  /** Target path -> temp path. */
  temps: Map<string, string>;
  commit(): Promise<void>;
  discard(): Promise<void>;
}

export async function stage(files: OutFile[]): Promise<Staged> {
  const temps = new Map<string, string>();
  const discard = async () => {
    for (const t of temps.values()) await unlink(t).catch(() => {});
    temps.clear();
  };
  // A Ctrl+C while files are being staged must not leave temp files behind either.
  const onSignal = () => {
    void discard().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  try {
    for (const f of files) {
      await mkdir(dirname(f.path), { recursive: true });
      const tmp = join(dirname(f.path), `.${basename(f.path)}.pgha-init-${randomBytes(4).toString('hex')}.tmp`);
      const fh = await open(tmp, 'wx', f.mode);
      temps.set(f.path, tmp);
      try {
        await fh.writeFile(f.content, 'utf8');
        await fh.sync();
      } finally {
        await fh.close();
      }
    }
  } catch (err) {
    process.removeListener('SIGINT', onSignal);
    await discard();
    throw err;
  }
  return {
    temps,
    async commit() {
      try {
        for (const [target, tmp] of temps) await rename(tmp, target);
        temps.clear();
      } finally {
        process.removeListener('SIGINT', onSignal);
        await discard();
      }
    },
    async discard() {
      process.removeListener('SIGINT', onSignal);
      await discard();
    },
  };
}
