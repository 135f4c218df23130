// Masking a file's secrets by their place in the file's format, not by searching for known
// spellings: a file on a host may hold passwords pgha no longer knows (before a password
// change), in a spelling the text masker does not know (YAML escapes). A rendered file that holds
// secrets declares its mask (RenderedFile.mask); diffs and masked renders use it on both sides.
import { isAlias, isCollection, isScalar, parseAllDocuments, visit, type Document, type Node } from 'yaml';
import { MASK } from '../ssh/mask.js';
import type { SecretMask } from '../engine/ops.js';

export type { MaskedContent, SecretMask } from '../engine/ops.js';

// Double-quoted: a plain ******** would read as a YAML alias, and the masked file stays valid YAML.
const YAML_MASK = `"${MASK}"`;

/**
 * A mask for YAML files: the value of every key for which `isSecretKey` holds, at any depth
 * (scalars, whole maps or lists, and what an alias there points to), is replaced in the source
 * text itself, so comments, order and every other line stay exactly as they are.
 */
export function yamlSecretMask(isSecretKey: (key: string) => boolean): SecretMask {
  return (content) => {
    const docs = parseAllDocuments(content, { uniqueKeys: false }) as unknown as Document.Parsed[];
    const ranges: [number, number][] = [];
    const secrets: string[] = [];
    for (const doc of docs) {
      // The parser's own message quotes the offending line, which may be a password: line only.
      const bad = doc.errors[0];
      if (bad) return { error: bad.linePos ? `not valid YAML at line ${bad.linePos[0].line}` : 'not valid YAML' };
      const seen = new Set<Node>();
      const hide = (node: Node): void => {
        if (seen.has(node)) return;
        seen.add(node);
        if (isAlias(node)) {
          // The value lives where the anchor is: mask it there.
          const target = node.resolve(doc);
          if (target) hide(target);
          return;
        }
        if (node.range) ranges.push([node.range[0], node.range[1]]);
        if (isScalar(node)) {
          if (node.value !== null && node.value !== undefined) secrets.push(String(node.value));
        } else if (isCollection(node)) {
          visit(node, {
            // Values only: the map's keys are names, not secrets.
            Scalar: (k, s) => void (k !== 'key' && s.value !== null && s.value !== undefined && secrets.push(String(s.value))),
            Alias: (_k, a) => hide(a),
          });
        }
      };
      visit(doc, {
        Pair: (_k, pair) => {
          if (isScalar(pair.key) && isSecretKey(String(pair.key.value)) && pair.value) hide(pair.value as Node);
        },
      });
    }
    return { text: replaceRanges(content, ranges), secrets };
  };
}

/** Replaces each range (overlapping ones merged) with the mask, keeping the line breaks that end it. */
function replaceRanges(text: string, ranges: [number, number][]): string {
  const merged: [number, number][] = [];
  for (const [s, e] of [...ranges].sort((a, b) => a[0] - b[0])) {
    const last = merged[merged.length - 1];
    if (last && s < last[1]) last[1] = Math.max(last[1], e);
    else if (e > s) merged.push([s, e]);
  }
  let out = '';
  let at = 0;
  for (const [s, e] of merged) {
    // A block scalar or block map ends with its line break(s): keep them so the next key keeps its line.
    const breaks = /\s*$/.exec(text.slice(s, e))![0].replace(/[^\n]/g, '');
    out += text.slice(at, s) + YAML_MASK + breaks;
    at = e;
  }
  return out + text.slice(at);
}
