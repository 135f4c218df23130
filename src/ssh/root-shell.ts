// A kept root shell: one long-lived bash on a host, behind sudo once, that runs the scripts the
// connection keeper (keeper.ts) gives it, one at a time. Each command run afresh costs the host a
// new SSH session, a login shell, sudo's PAM session and coreutils' timeout (about 45 ms of CPU on
// the lab's machines, per host, per `pgha status`); through this shell it costs a `timeout` and a
// `cat`. Scripts travel as lines up to a mark of their own (no byte counts: the host's locale does
// not matter); their output comes back between marks, stdout and stderr apart, with the exit code.
// A script past its time limit is reported at once and the shell given up (its channel closed);
// coreutils' timeout on the host kills the script a second later, as for a command run afresh.
import { randomBytes } from 'node:crypto';
import type { RawResult } from './connection.js';
import { CommandTimeout } from './connection.js';
import { PghaError } from '../errors.js';
import { KeptProcess, type ProcessPipe } from './kept-process.js';

/** How long the shell may take to say it is ready (sudo, a loaded host). */
const READY_MS = 10_000;

/**
 * The shell: $1 its ready mark. Each request is a line "MARK SECONDS", the script's lines, then a
 * line holding MARK alone. Output files live in a directory of its own, on tmpfs where there is one
 * (a full disk must not keep status from asking), removed when the shell ends; bash's `read` takes
 * them back (a `cat` costs these hosts ten times more; output is text, so no NUL byte is lost).
 */
export const ROOT_SHELL = String.raw`d=$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d) || exit 1
trap 'rm -rf "$d"' EXIT
trap 'exit 1' HUP TERM PIPE
printf '%s\n' "$1"
while IFS=' ' read -r m s; do
  t=
  while IFS= read -r l; do [ "$l" = "$m" ] && break; t=$t$l$'\n'; done
  timeout -k 5 "$s" sh -c "$t" </dev/null >"$d/o" 2>"$d/e"
  c=$?
  IFS= read -r -d '' o <"$d/o"; IFS= read -r -d '' e <"$d/e"
  printf '%s out\n%s\n%s err\n%s\n%s end %s\n' "$m" "$o" "$m" "$e" "$m" "$c"
done`;

/** The command line that starts the shell as it is (the caller adds sudo); its ready mark. */
export function rootShellCommand(): { argv: string[]; ready: string } {
  const ready = `pgha-shell-ready-${randomBytes(6).toString('hex')}`;
  return { argv: ['bash', '-c', ROOT_SHELL, 'pgha-shell', ready], ready };
}

/** A script's answer in the shell's output, once it is all there: `text` from its start mark on. */
export function readAnswer(text: string, mark: string): { raw: RawResult; rest: string } | undefined {
  const start = text.indexOf(`${mark} out\n`);
  if (start < 0) return undefined;
  const end = new RegExp(`\\n${mark} end (\\d+)\\n`).exec(text.slice(start));
  if (!end) return undefined;
  const body = text.slice(start + mark.length + 5, start + end.index);
  const cut = body.lastIndexOf(`\n${mark} err\n`);
  if (cut < 0) return undefined;
  const raw: RawResult = { code: Number(end[1]), signal: null, stdout: body.slice(0, cut), stderr: body.slice(cut + mark.length + 6) };
  return { raw, rest: text.slice(start + end.index + end[0].length) };
}

export class RootShell extends KeptProcess {
  /** Claimed for a script, or one runs now: the next is asked elsewhere (the keeper opens a channel for it). */
  busy = false;

  /** The shell on `pipe` once it said it is ready; undefined when it ended first or took too long (e.g. sudo refused). */
  static async start(pipe: ProcessPipe, ready: string): Promise<RootShell | undefined> {
    const shell = new RootShell(pipe);
    const ok = await shell.until(() => (shell.text().includes(`${ready}\n`) ? true : undefined), READY_MS);
    if (ok !== true) {
      shell.close();
      return undefined;
    }
    shell.out = Buffer.alloc(0);
    return shell;
  }

  /** The output so far, decoded whole (a character may span chunks). */
  private text(): string {
    return this.out.toString('utf8');
  }

  /**
   * Runs shell text as root: its exit code, stdout and stderr. Throws CommandTimeout past
   * timeoutMs (0: a day; the shell is then given up), an Error when the shell ended under it.
   */
  async run(text: string, timeoutMs: number): Promise<RawResult> {
    if (!this.alive) throw new PghaError('the kept root shell ended');
    this.busy = true;
    try {
      const mark = `pgha-${randomBytes(6).toString('hex')}`;
      const ms = timeoutMs > 0 ? timeoutMs : 86_400_000;
      // The host's limit a second after this end's, as ShellConnection sets it for a command run afresh.
      this.pipe.write(`${mark} ${Math.ceil(ms / 1000) + 1}s\n${text}\n${mark}\n`);
      const got = await this.until(() => readAnswer(this.text(), mark), ms);
      if (got === 'late') {
        this.close();
        throw new CommandTimeout();
      }
      if (got === 'ended') throw new PghaError('the kept root shell ended while a command ran: its outcome on the host is unknown');
      this.out = Buffer.from(got.rest, 'utf8');
      return got.raw;
    } finally {
      this.busy = false;
    }
  }
}
