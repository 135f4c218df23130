// Operations specific to this rollout, on top of the engine's generic ones.
import { file, type Handler, type Operation } from '../engine/index.js';
import type { RenderedFile } from '../render/index.js';

/**
 * A rendered file as a file op (owner, mode). A secret file's diff is masked by its own mask on
 * both sides; a secret file without a mask shows no diff at all.
 */
export function renderedFileOp(f: RenderedFile, notify: Handler[] = []): Operation {
  return file(f.path, f.content, { owner: f.owner, group: f.group, mode: f.mode, notify, sensitive: f.secret && !f.mask, mask: f.mask });
}

/**
 * A service started without waiting for it (`--no-block`) and enabled at boot. etcd's unit is
 * Type=notify: a member's first start blocks until the cluster has quorum, so members are
 * started together and a health gate waits instead.
 */
export function serviceStarted(name: string, opts: { noBlock?: boolean } = {}): Operation {
  const plan = async (facts: Parameters<Operation['check']>[1]) => {
    const f = await facts.service(name);
    const steps: string[] = [];
    if (!['enabled', 'static', 'alias'].includes(f.enabled)) steps.push('enable');
    if (f.active !== 'active' && f.active !== 'activating') steps.push('start');
    return steps;
  };
  return {
    describe: `service ${name}`,
    needs: { services: [name] },
    async check(_conn, facts) {
      const steps = await plan(facts);
      return steps.length ? { summary: steps.join(', ') } : null;
    },
    async apply(conn, facts) {
      for (const step of await plan(facts)) {
        await conn.run(['systemctl', step, ...(step === 'start' && opts.noBlock ? ['--no-block'] : []), '--', name]);
      }
      facts.invalidate({ services: [name] });
    },
  };
}

/** Handler: restart without waiting (see serviceStarted). */
export function restartNoBlock(name: string): Handler {
  return { name: `restart ${name}`, run: async (conn) => void (await conn.run(['systemctl', 'restart', '--no-block', '--', name])) };
}

/** Handler: reload a service if it runs (a stopped one reads its config when it starts). */
export function reloadIfRunning(name: string): Handler {
  return {
    name: `reload ${name}`,
    run: async (conn) => {
      const active = await conn.run(['systemctl', 'is-active', '--quiet', '--', name], { check: false });
      if (active.code === 0) await conn.run(['systemctl', 'reload', '--', name]);
    },
  };
}

/** Handler: systemctl daemon-reload (after unit files changed). */
export const daemonReload: Handler = {
  name: 'systemctl daemon-reload',
  run: async (conn) => void (await conn.run(['systemctl', 'daemon-reload'])),
};
