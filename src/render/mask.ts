// Secrets out of rendered text: what `pgha render` writes without --show-secrets.
import { type Inventory, secretValues } from '../inventory/index.js';
import { Masker } from '../ssh/mask.js';
import type { RenderedFile } from './template.js';

/** Replaces every secret value in `text` with ******** (the text masker, src/ssh/mask.ts). */
export function maskSecrets(text: string, inv: Inventory): string {
  return new Masker(secretValues(inv.secrets)).mask(text);
}

/** A rendered file's content with its secrets masked: by structure first (its own mask), then as text. */
export function maskedContent(f: RenderedFile, inv: Inventory): string {
  const m = f.mask?.(f.content);
  return maskSecrets(m && 'text' in m ? m.text : f.content, inv);
}
