// The unit tests' inventory: test/fixtures/inventories/valid.yml plus the YAML a test adds, with a
// secrets file (mode 0600) beside it; loaded as pgha loads one, or its located errors.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadInventory, type Inventory } from '../../../src/inventory/index.js';
import { InputError } from '../../../src/errors.js';

export const VALID_INVENTORY = readFileSync('test/fixtures/inventories/valid.yml', 'utf8');
export const TEST_SECRETS = readFileSync('test/fixtures/secrets/test-secrets.yaml', 'utf8');

/** The inventory, or the error's lines from `inv.yml:` on (FILE:LINE:COL, the field, what is expected). */
export async function loadWith(extra: string, secrets = TEST_SECRETS): Promise<{ inv?: Inventory; lines: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'pgha-inventory-'));
  writeFileSync(join(dir, 'inv.yml'), `${VALID_INVENTORY}secrets: s.yml\n${extra}`);
  writeFileSync(join(dir, 's.yml'), secrets);
  chmodSync(join(dir, 's.yml'), 0o600);
  try {
    return { inv: await loadInventory(join(dir, 'inv.yml')), lines: [] };
  } catch (err) {
    assert.ok(err instanceof InputError, String(err));
    return { lines: err.lines.map((l) => l.slice(l.indexOf('inv.yml:'))) };
  }
}
