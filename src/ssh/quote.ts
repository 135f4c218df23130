// Commands are data: an argv array is quoted here for the remote POSIX shell, so no
// argument can ever be read as shell syntax. A raw string is passed through unchanged.

/** An argv array (each element quoted) or a raw shell string (used as written). */
export type Command = readonly string[] | string;

const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** Quotes one word for a POSIX shell: single quotes, with ' written as '\''. */
export function shellQuote(word: string): string {
  if (word !== '' && SAFE.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The shell text of a command. */
export function commandText(cmd: Command): string {
  if (typeof cmd === 'string') return cmd;
  if (cmd.length === 0) throw new Error('empty command');
  return cmd.map(shellQuote).join(' ');
}
