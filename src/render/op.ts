// A rendered file as an engine op: written whole and atomically with its owner and mode; a
// changed file notifies its handlers (reload, restart) once at the end of the stage.
import { file, type Handler, type Operation } from '../engine/index.js';
import type { RenderedFile } from './template.js';

// A secret file's diff is masked by its own mask on both sides; a secret file without a mask
// shows no diff at all.
export function fileOp(f: RenderedFile, notify: Handler[] = []): Operation {
  return file(f.path, f.content, { owner: f.owner, group: f.group, mode: f.mode, notify, sensitive: f.secret && !f.mask, mask: f.mask });
}
