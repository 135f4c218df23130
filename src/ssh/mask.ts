// Every command text that is echoed or put into an error goes through a Masker first:
// commands and their output may carry passwords from the inventory's secrets.
import { shellQuote } from './quote.js';

export const MASK = '********';

// Shorter strings would mask ordinary words all over the output and hide nothing of value.
const MIN_SECRET_LENGTH = 4;

export class Masker {
  private secrets: string[] = [];

  constructor(secrets: Iterable<string> = []) {
    for (const s of secrets) this.add(s);
  }

  /** Registers a secret; its shell-quoted spelling is masked too. */
  add(secret: string): this {
    if (secret.length < MIN_SECRET_LENGTH) return this;
    // As written, as one quoted word, and as it reads inside a longer single-quoted string.
    for (const form of new Set([secret, shellQuote(secret), secret.replace(/'/g, `'\\''`)])) {
      if (!this.secrets.includes(form)) this.secrets.push(form);
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
