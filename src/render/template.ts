// Templates: whole files rendered from templates/<component>/<name>.hbs with Handlebars (noEscape:
// the files are configs, not HTML; strict: a missing value is an error, never an empty string).
// Every rendered file is a RenderedFile; how a component builds its context is its own business.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Handlebars from 'handlebars';

/** The component a file belongs to (its folder under src/components and templates/). */
export type ComponentName = 'base' | 'etcd' | 'patroni' | 'haproxy' | 'pgbackrest';

export interface RenderedFile {
  /** Absolute path on the host. */
  path: string;
  content: string;
  owner: string;
  group: string;
  /** e.g. 0o600 */
  mode: number;
  component: ComponentName;
  /** True when the content holds a password. */
  secret: boolean;
  /** Written before any package is installed (apt settings; Debian's createcluster setting). */
  beforePackages?: boolean;
}

// templates/ beside src/ and dist/ alike (the published package ships it).
const TEMPLATE_DIR = fileURLToPath(new URL('../../templates/', import.meta.url));
const HEADER = 'Written by pgha from the inventory. Local changes are overwritten by the next apply.';

let hbs: typeof Handlebars | undefined;
const compiled = new Map<string, HandlebarsTemplateDelegate>();

/** Renders templates/COMPONENT/NAME with `ctx` (plus `header`, the do-not-edit line). */
export function renderTemplate(component: ComponentName, name: string, ctx: object): string {
  const key = `${component}/${name}`;
  let t = compiled.get(key);
  if (!t) {
    if (!hbs) {
      hbs = Handlebars.create();
      hbs.registerHelper('json', (v: unknown) => JSON.stringify(v));
    }
    t = hbs.compile(readFileSync(join(TEMPLATE_DIR, component, name), 'utf8'), { noEscape: true, strict: true });
    compiled.set(key, t);
  }
  return t({ header: HEADER, ...ctx });
}

/** A RenderedFile of `component` from its template (root:root 0644 unless said otherwise). */
export function renderFile(
  component: ComponentName,
  path: string,
  template: string,
  ctx: object,
  attrs: Partial<Pick<RenderedFile, 'owner' | 'group' | 'mode' | 'secret' | 'beforePackages'>> = {},
): RenderedFile {
  return { path, content: renderTemplate(component, template, ctx), owner: 'root', group: 'root', mode: 0o644, secret: false, component, ...attrs };
}
