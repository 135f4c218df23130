// Where pgha's own files are (package.json, templates/, schema/): the package's root, found from
// this module's location, so it holds whether the code runs from src/ (tsx), dist/ or the
// bundle in dist/bundle/ (its chunks sit at another depth than the modules they came from).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'pgha') return dir;
    if (dirname(dir) === dir) throw new Error('pgha: cannot find its own package.json above its code');
  }
}

let root: string | undefined;

/** A path inside pgha's package (e.g. 'templates/', 'schema/inventory.schema.json'). */
export function packagePath(rel: string): string {
  root ??= findRoot();
  return join(root, rel);
}

/** pgha's own version: its package.json, never npm's environment. */
export function pghaVersion(): string {
  return (JSON.parse(readFileSync(packagePath('package.json'), 'utf8')) as { version: string }).version;
}
