// Maps problems (YAML syntax errors, schema issues, cross-field rules) to FILE:LINE:COL lines,
// so an operator can jump straight to the key or value that is wrong.
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, visit, type Document, type Node, type YAMLError } from 'yaml';
import type { z } from 'zod';
import { escapeControls } from '../terminal.js';

export type PathSeg = string | number;

/** One problem, before it is located. `at: 'key'` points at the key itself (a typo, a bad host name). */
export interface Problem {
  path: PathSeg[];
  message: string;
  at?: 'key' | 'value';
}

export interface ParsedYaml {
  file: string;
  doc: Document.Parsed;
  lc: LineCounter;
}

function formatPath(path: PathSeg[]): string {
  let s = '';
  for (const seg of path) {
    if (typeof seg === 'number') s += `[${seg}]`;
    // A key that is not a plain name (a space, a dot, a line break in it) is shown quoted.
    else if (!/^[A-Za-z0-9_-]+$/.test(seg)) s += `[${JSON.stringify(seg)}]`;
    else s += s ? `.${seg}` : seg;
  }
  return s || '(document)';
}

export function parseYaml(file: string, text: string): ParsedYaml {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  return { file, doc, lc };
}

const YAML_HINTS: Record<string, string> = {
  TAB_AS_INDENT: 'a tab in the indentation, expected spaces (YAML forbids tabs there)',
  DUPLICATE_KEY: 'duplicate key, expected each key at most once in a map',
  BAD_INDENT: 'bad indentation, expected the items of one map or list to start at the same column',
  BLOCK_AS_IMPLICIT_KEY: 'a list item where a map key belongs, expected "key: value" (or a list under its own key)',
};

/** YAML syntax errors, one line each (cascading errors on the same line are reported once). */
export function yamlErrorLines(p: ParsedYaml, opts: { quiet?: boolean } = {}): string[] {
  const seen = new Set<number>();
  const out: string[] = [];
  for (const err of p.doc.errors as YAMLError[]) {
    const { line, col } = p.lc.linePos(err.pos[0]);
    if (seen.has(line)) continue;
    seen.add(line);
    let msg = YAML_HINTS[err.code] ?? `${err.message.split('\n')[0]}, expected valid YAML`;
    if (err.code === 'MISSING_CHAR' && /quote/.test(err.message)) {
      msg = 'unclosed quote, expected the closing quote on the same scalar';
    }
    if (/^Flow (sequence|map)/.test(err.message)) {
      msg = 'unclosed [ or {, expected the closing ] or } (continuation lines indented deeper than the key)';
    }
    const path = opts.quiet ? [] : pathAtOffset(p.doc, err.pos[0]);
    out.push(escapeControls(`${p.file}:${line}:${col}: ${formatPath(path)}: ${msg}`));
  }
  return out;
}

/**
 * Alias expansions allowed when a document becomes plain data (the yaml library's own default,
 * made explicit): nested anchors ("billion laughs") would otherwise expand exponentially.
 */
const MAX_ALIAS_COUNT = 100;

/** The document as plain data, or a located problem line when its aliases expand too far. */
export function yamlValue(p: ParsedYaml): { value: unknown } | { lines: string[] } {
  try {
    return { value: p.doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) ?? {} };
  } catch (err) {
    if (!(err instanceof ReferenceError)) throw err;
    // The library does not say which alias: point at the first one that repeats a collection
    // holding aliases itself (the amplifying kind), else at the first alias.
    let first: Node | undefined;
    let nested: Node | undefined;
    visit(p.doc, {
      Alias(_, alias) {
        first ??= alias;
        const target = alias.resolve(p.doc);
        let inner = false;
        if (target && !isScalar(target)) visit(target, { Alias: () => ((inner = true), visit.BREAK) });
        if (inner && !nested) nested = alias;
      },
    });
    const at = nested ?? first;
    const { line, col } = p.lc.linePos(at?.range?.[0] ?? 0);
    const path = at ? pathAtOffset(p.doc, at.range![0]) : [];
    const what = at && isAlias(at) ? `alias *${at.source}` : 'an alias';
    return {
      lines: [
        escapeControls(
          `${p.file}:${line}:${col}: ${formatPath(path)}: ${what} expands too many times (nested anchors), ` +
            `expected plain values or a few aliases (at most ${MAX_ALIAS_COUNT} alias expansions)`,
        ),
      ],
    };
  }
}

/** The path of the deepest key whose key or value spans `offset` (best effort, for syntax errors). */
function pathAtOffset(doc: Document.Parsed, offset: number): PathSeg[] {
  const path: PathSeg[] = [];
  let node: unknown = doc.contents;
  for (;;) {
    if (isMap(node)) {
      const pair = node.items.find((it) => {
        const start = (it.key as Node | null)?.range?.[0] ?? Infinity;
        const end = (it.value as Node | null)?.range?.[2] ?? (it.key as Node | null)?.range?.[2] ?? -1;
        return start <= offset && offset <= end;
      });
      // A key swallowed by the syntax error (spanning lines) is no field name: stop there.
      if (!pair || !isScalar(pair.key) || /\s/.test(String(pair.key.value))) return path;
      path.push(String(pair.key.value));
      node = pair.value;
    } else if (isSeq(node)) {
      const i = node.items.findIndex((it) => {
        const r = (it as Node | null)?.range;
        return !!r && r[0] <= offset && offset <= r[2];
      });
      if (i < 0) return path;
      path.push(i);
      node = node.items[i];
    } else {
      return path;
    }
  }
}

/** Line and column of the node a path names; missing keys point at their parent's key. */
export function locate(p: ParsedYaml, path: PathSeg[], at: 'key' | 'value' = 'value'): { line: number; col: number } {
  let node: unknown = p.doc.contents;
  let parentKey: Node | null = null; // the key that introduced `node`
  let offset: number | undefined;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    let next: unknown;
    let key: Node | null = null;
    if (isMap(node)) {
      const pair = node.items.find((it) => isPair(it) && isScalar(it.key) && String(it.key.value) === String(seg));
      if (pair) {
        key = pair.key as Node;
        next = pair.value;
      }
    } else if (isSeq(node) && typeof seg === 'number' && seg < node.items.length) {
      next = node.items[seg];
    }
    if (!key && next === undefined) {
      // Missing: point at the map that lacks it (its key, or the document start).
      offset = parentKey?.range?.[0] ?? (node as Node | null)?.range?.[0] ?? 0;
      return p.lc.linePos(offset);
    }
    const last = i === path.length - 1;
    if (last && at === 'key' && key) return p.lc.linePos(key.range![0]);
    parentKey = key ?? (next as Node | null);
    if (next === null || next === undefined || (isScalar(next) && next.range === undefined)) {
      // `key:` with no value: point at the key.
      return p.lc.linePos(key?.range?.[0] ?? 0);
    }
    node = next;
  }
  offset = (node as Node | null)?.range?.[0] ?? 0;
  return p.lc.linePos(offset);
}

/** `FILE:LINE:COL: path: message`, one line: control characters from the input are escaped. */
export function problemLine(p: ParsedYaml, prob: Problem): string {
  const { line, col } = locate(p, prob.path, prob.at);
  return escapeControls(`${p.file}:${line}:${col}: ${formatPath(prob.path)}: ${prob.message}`);
}

// ---- zod issues -> problems ----

function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a map';
  if (typeof v === 'string') return `"${v.length > 40 ? `${v.slice(0, 40)}...` : v}"`;
  return String(v);
}

function describeType(t: string): string {
  const names: Record<string, string> = {
    object: 'a map',
    record: 'a map',
    array: 'a list',
    string: 'a string',
    number: 'a number',
    int: 'an integer',
    boolean: 'true or false',
  };
  return names[t] ?? t;
}

function getIn(data: unknown, path: PathSeg[]): unknown {
  let v: unknown = data;
  for (const seg of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[seg as string];
  }
  return v;
}

/** The keys a strict object accepts at `path` (for "unknown key" hints). */
function knownKeys(schema: z.ZodType, path: PathSeg[]): string[] {
  let s: any = schema;
  const unwrap = () => {
    for (;;) {
      const def = s?._zod?.def;
      if (def && ['default', 'prefault', 'optional', 'nullable', 'pipe'].includes(def.type)) s = def.innerType ?? def.in;
      // true/false or a map (tls): the map's keys.
      else if (def?.type === 'union') s = def.options.find((o: any) => o._zod.def.type === 'object') ?? def.options[0];
      else break;
    }
  };
  unwrap();
  for (const seg of path) {
    const def = s?._zod?.def;
    if (!def) return [];
    if (def.type === 'object') s = def.shape[seg];
    else if (def.type === 'record') s = def.valueType;
    else if (def.type === 'array') s = def.element;
    else return [];
    unwrap();
  }
  return s?._zod?.def?.type === 'object' ? Object.keys(s._zod.def.shape) : [];
}

function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++)
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[a.length][b.length];
}

/**
 * Turns zod issues into problems. `showValues: false` keeps values out of messages (secrets).
 */
export function zodProblems(schema: z.ZodType, issues: z.core.$ZodIssue[], data: unknown, showValues = true): Problem[] {
  const out: Problem[] = [];
  // Without values (secrets), only the kind of value: a number or true/false can be a password too.
  const kinds: Record<string, string> = { string: 'a string', number: 'a number', boolean: 'true or false' };
  const show = (v: unknown) => (showValues || v === null || typeof v === 'object' || v === undefined ? describeValue(v) : (kinds[typeof v] ?? 'a value'));
  for (const issue of issues) {
    const path = issue.path as PathSeg[];
    const value = getIn(data, path);
    switch (issue.code) {
      case 'unrecognized_keys': {
        const known = knownKeys(schema, path);
        for (const k of issue.keys) {
          const near = known.filter((c) => distance(c, k) <= 2).sort((a, b) => distance(a, k) - distance(b, k))[0];
          out.push({
            path: [...path, k],
            at: 'key',
            message: near
              ? `unknown key, did you mean "${near}"? (expected one of: ${known.join(', ')})`
              : `unknown key, expected one of: ${known.join(', ')}`,
          });
        }
        break;
      }
      case 'invalid_type': {
        const expected = describeType(issue.expected);
        out.push({
          path,
          message: value === undefined ? `required key missing, expected ${expected}` : `got ${show(value)}, expected ${expected}`,
        });
        break;
      }
      case 'too_small':
      case 'too_big': {
        const bound = Number(issue.code === 'too_small' ? issue.minimum : issue.maximum);
        const cmp = issue.code === 'too_small' ? 'at least' : 'at most';
        let what = `${cmp} ${bound}`;
        if (issue.origin === 'array') what = `${cmp} ${bound} entr${bound === 1 ? 'y' : 'ies'}`;
        if (issue.origin === 'string') what = `${cmp} ${bound} characters`;
        out.push({ path, message: `got ${show(value)}, expected ${what}` });
        break;
      }
      case 'invalid_value':
        out.push({
          path,
          message: `got ${show(value)}, expected one of: ${issue.values.map((v) => String(v)).join(', ')}`,
        });
        break;
      case 'invalid_key': {
        // A map key (a host name, a PostgreSQL parameter name) the key schema refused: the
        // problem is the key itself, so point there.
        const key = path[path.length - 1];
        const inner = issue.issues[0]?.message ?? 'invalid key';
        out.push({ path, at: 'key', message: `got ${describeValue(String(key))}, ${inner}` });
        break;
      }
      case 'invalid_union': {
        // Every alternative refused the value's type: name the types it may have.
        const types = [...new Set(issue.errors.flatMap((e) => e.filter((i) => i.code === 'invalid_type' && i.path.length === 0).map((i) => (i as { expected: string }).expected)))];
        const expected =
          types.length === 0 || ['string', 'number', 'boolean'].every((t) => types.includes(t))
            ? 'a string, number or true/false'
            : types.map(describeType).join(' or ');
        out.push({ path, message: `got ${show(value)}, expected ${expected}` });
        break;
      }
      case 'invalid_format':
        out.push({
          path,
          message: /expected/.test(issue.message)
            ? `got ${show(value)}, ${issue.message}`
            : `got ${show(value)}, expected a valid ${issue.format}`,
        });
        break;
      default:
        out.push({ path, message: `got ${show(value)}, ${issue.message}` });
    }
  }
  return out;
}
