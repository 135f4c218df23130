// A small unified diff (like `diff -u`) for showing file changes in check mode.
// LCS over lines after trimming the common head and tail: config files are small and
// their changes local, so the quadratic middle stays tiny.

const CONTEXT = 3;
// Above this many cells the middle is shown as removed-then-added instead of aligned.
const MAX_CELLS = 4_000_000;

type Edit = { op: ' ' | '-' | '+'; line: string };

/** Lines with their newline kept, so a missing newline at the end is a difference too. */
function lines(text: string): string[] {
  if (text === '') return [];
  return text.split(/(?<=\n)/);
}

function edits(a: string[], b: string[]): Edit[] {
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;
  const am = a.slice(head, a.length - tail);
  const bm = b.slice(head, b.length - tail);
  const out: Edit[] = a.slice(0, head).map((line) => ({ op: ' ', line }));
  if (am.length * bm.length > MAX_CELLS) {
    out.push(...am.map((line) => ({ op: '-' as const, line })), ...bm.map((line) => ({ op: '+' as const, line })));
  } else {
    // lcs[i][j] = length of the LCS of am[i..] and bm[j..]
    const w = bm.length + 1;
    const lcs = new Uint32Array((am.length + 1) * w);
    for (let i = am.length - 1; i >= 0; i--) {
      for (let j = bm.length - 1; j >= 0; j--) {
        lcs[i * w + j] = am[i] === bm[j] ? lcs[(i + 1) * w + j + 1] + 1 : Math.max(lcs[(i + 1) * w + j], lcs[i * w + j + 1]);
      }
    }
    let i = 0;
    let j = 0;
    while (i < am.length || j < bm.length) {
      if (i < am.length && j < bm.length && am[i] === bm[j]) {
        out.push({ op: ' ', line: am[i++] });
        j++;
      } else if (j < bm.length && (i === am.length || lcs[i * w + j + 1] > lcs[(i + 1) * w + j])) {
        out.push({ op: '+', line: bm[j++] });
      } else {
        out.push({ op: '-', line: am[i++] });
      }
    }
    // diff -u lists a change's removals before its additions
    for (let k = 0; k < out.length; k++) {
      let end = k;
      while (end < out.length && out[end].op !== ' ') end++;
      if (end > k + 1) {
        const block = out.slice(k, end);
        out.splice(k, end - k, ...block.filter((e) => e.op === '-'), ...block.filter((e) => e.op === '+'));
      }
      k = end;
    }
  }
  out.push(...a.slice(a.length - tail).map((line) => ({ op: ' ' as const, line })));
  return out;
}

function render(e: Edit): string {
  const text = e.line.endsWith('\n') ? e.line.slice(0, -1) : `${e.line}\n\\ No newline at end of file`;
  return `${e.op}${text}`;
}

/** A unified diff of two texts, or '' when they are equal. */
export function unifiedDiff(oldText: string, newText: string, oldName = 'current', newName = 'wanted'): string {
  if (oldText === newText) return '';
  const all = edits(lines(oldText), lines(newText));
  const out = [`--- ${oldName}`, `+++ ${newName}`];
  let k = 0;
  while (k < all.length) {
    // next change, then the hunk around it: changes closer than 2*CONTEXT share one hunk
    while (k < all.length && all[k].op === ' ') k++;
    if (k === all.length) break;
    const start = Math.max(0, k - CONTEXT);
    let end = k;
    for (;;) {
      while (end < all.length && all[end].op !== ' ') end++;
      let next = end;
      while (next < all.length && all[next].op === ' ') next++;
      if (next < all.length && next - end <= 2 * CONTEXT) end = next;
      else break;
    }
    const stop = Math.min(all.length, end + CONTEXT);
    const hunk = all.slice(start, stop);
    // line numbers: count what comes before the hunk in each file
    const before = all.slice(0, start);
    const oldStart = before.filter((e) => e.op !== '+').length;
    const newStart = before.filter((e) => e.op !== '-').length;
    const oldLen = hunk.filter((e) => e.op !== '+').length;
    const newLen = hunk.filter((e) => e.op !== '-').length;
    const range = (s: number, n: number) => (n === 1 ? `${s + 1}` : `${n === 0 ? s : s + 1},${n}`);
    out.push(`@@ -${range(oldStart, oldLen)} +${range(newStart, newLen)} @@`, ...hunk.map(render));
    k = stop;
  }
  return `${out.join('\n')}\n`;
}
