// The one text masker for secrets: every command text that is echoed or put into an error,
// every line the engine prints, `pgha render`'s masked files and `pgha status` go through a
// Masker built from the inventory's secrets. It finds the spellings a secret takes in pgha's
// output: as written, JSON-escaped (config files, JSON output) and shell-quoted (commands).
// Files that hold secrets are also masked by structure first (src/render/secret-mask.ts), which
// also hides values this masker cannot know (old passwords on a host).
import { shellQuote } from './quote.js';

export const MASK = '********';

// Shorter strings would mask ordinary words all over the output and hide nothing of value.
const MIN_SECRET_LENGTH = 4;

export class Masker {
  private secrets: string[] = [];

  constructor(secrets: Iterable<string> = []) {
    for (const s of secrets) this.add(s);
  }

  /** Registers a secret; its JSON-escaped and shell-quoted spellings are masked too. */
  add(secret: string): this {
    if (secret.length < MIN_SECRET_LENGTH) return this;
    // As written and as inside a JSON string ("a\"b"); each as one quoted shell word and as it
    // reads inside a longer single-quoted string.
    const json = JSON.stringify(secret).slice(1, -1);
    for (const base of [secret, json]) {
      for (const form of [base, shellQuote(base), base.replace(/'/g, `'\\''`)]) {
        if (!this.secrets.includes(form)) this.secrets.push(form);
      }
    }
    // Longest first, so a secret that contains another is masked whole.
    this.secrets.sort((a, b) => b.length - a.length);
    return this;
  }

  mask(text: string): string {
    let out = text;
    for (const s of this.secrets) out = out.split(s).join(MASK);
    return out;
  }
}
