// Secrets out of rendered text: what `pgha render` writes without --show-secrets.
import type { Inventory } from '../inventory/index.js';

/** Replaces every secret value in `text` with ********. */
export function maskSecrets(text: string, inv: Inventory): string {
  if (!inv.secrets) return text;
  // Longest first, so a password containing another is masked whole.
  const values = Object.values(inv.secrets).sort((a, b) => b.length - a.length);
  let out = text;
  for (const v of values) {
    out = out.split(v).join('********');
    // Passwords are written JSON-quoted in YAML files: mask that spelling too.
    const quoted = JSON.stringify(v).slice(1, -1);
    if (quoted !== v) out = out.split(quoted).join('********');
  }
  return out;
}
