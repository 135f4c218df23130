// Templates: whole files rendered from templates/<component>/<name>.hbs with Handlebars (noEscape:
// the files are configs, not HTML; strict: a missing value is an error, never an empty string).
// Every rendered file is a RenderedFile; how a component builds its context is its own business.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Handlebars from 'handlebars';
import type { SecretMask } from '../engine/ops.js';
import { packagePath } from '../package-files.js';

/** The component a file belongs to (its folder under src/components and templates/). */
export type ComponentName = 'tls' | 'base' | 'etcd' | 'patroni' | 'haproxy' | 'pgbackrest' | 'databases' | 'notifications' | 'monitoring' | 'vip' | 'pgbouncer';

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
  /**
   * How to mask this file's secrets by structure (diffs on the host, masked renders). A secret
   * file without one never shows a diff.
   */
  mask?: SecretMask;
}

/**
 * A double-quoted apt.conf string. apt has no escape inside quotes, so whatever could end the
 * string or the line (", a line break, any control or non-ASCII character, and \ too) is written
 * %XX-encoded: the value is a URL, and apt reads URL escapes back.
 */
function aptString(v: string): string {
  const enc = (c: string) => [...Buffer.from(c, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');
  return `"${[...v].map((c) => (/^[\x21\x23-\x5b\x5d-\x7e]$/.test(c) ? c : enc(c))).join('')}"`;
}

// templates/ at the package's root (the published package ships it).
const TEMPLATE_DIR = packagePath('templates/');
export const HEADER = 'Written by pgha from the inventory. Local changes are overwritten by the next apply.';

let hbs: typeof Handlebars | undefined;
const compiled = new Map<string, HandlebarsTemplateDelegate>();

/** Renders templates/COMPONENT/NAME with `ctx` (plus `header`, the do-not-edit line). */
function renderTemplate(component: ComponentName, name: string, ctx: object): string {
  const key = `${component}/${name}`;
  let t = compiled.get(key);
  if (!t) {
    if (!hbs) {
      hbs = Handlebars.create();
      hbs.registerHelper('json', (v: unknown) => JSON.stringify(v));
      hbs.registerHelper('aptString', (v: string) => aptString(v));
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
  attrs: Partial<Pick<RenderedFile, 'owner' | 'group' | 'mode' | 'secret' | 'beforePackages' | 'mask'>> = {},
): RenderedFile {
  return { path, content: renderTemplate(component, template, ctx), owner: 'root', group: 'root', mode: 0o644, secret: false, component, ...attrs };
}
