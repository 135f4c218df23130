// Text that came from input (inventory values, file names, host output) is shown on a terminal.
// Control characters in it could move the cursor, rewrite earlier lines or set the window title
// (ANSI/OSC escapes), or hide text (CR, NUL): they are shown escaped instead, as \n, \x1b, \u0085.

/** C0 controls, DEL, C1 controls, and the Unicode line/paragraph separators and bidi overrides. */
const CONTROL = /[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const CONTROL_BUT_NEWLINE = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function escapeOne(c: string): string {
  const code = c.charCodeAt(0);
  return NAMED[c] ?? (code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`);
}

/** `text` with every control character escaped; newlines too unless `keepNewlines`. */
export function escapeControls(text: string, opts: { keepNewlines?: boolean } = {}): string {
  return text.replace(opts.keepNewlines ? CONTROL_BUT_NEWLINE : CONTROL, escapeOne);
}

/** The first control character in `text`, named for a message (e.g. "a newline (\n)"), or null. */
export function controlCharacter(text: string): string | null {
  const m = /[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/.exec(text);
  if (!m) return null;
  const names: Record<string, string> = {
    '\n': 'a newline',
    '\r': 'a carriage return',
    '\t': 'a tab',
    '\x00': 'a NUL character',
    '\x1b': 'an ESC character',
    '\x7f': 'a DEL character',
  };
  return `${names[m[0]] ?? 'a control character'} (${escapeOne(m[0])})`;
}
