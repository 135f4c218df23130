// What every component of a rollout gets: the session (inventory + connections), the rollout
// (stages, gates, check mode) and the files rendered for each host.
import type { Rollout } from '../engine/index.js';
import type { Host } from '../inventory/index.js';
import type { Dcs, RenderedFile } from '../render/index.js';
import type { Session } from '../cluster/session.js';

export interface ApplyContext {
  session: Session;
  rollout: Rollout;
  dcs: Dcs;
  /** Rendered files of a host (for its roles only). */
  files(host: Host | string): RenderedFile[];
  /** Notes for the end of the run (pending restarts and the like). */
  notes: string[];
  /** The inventory file as the operator named it (for commands a note suggests). */
  inventoryFile?: string;
}

/** The rendered file at `path` on `host`; a missing one is a bug in the component. */
export function renderedFile(ctx: ApplyContext, host: Host | string, path: string): RenderedFile {
  const f = ctx.files(host).find((x) => x.path === path);
  if (!f) throw new Error(`no rendered ${path} for ${typeof host === 'string' ? host : host.name}`);
  return f;
}
