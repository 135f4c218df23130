// `pgha render`: every file apply would push, written to DIR/HOST/<absolute path> for review,
// without contacting any host.
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { InputError } from '../../errors.js';
import type { Inventory, Secrets } from '../../inventory/index.js';
import { MASK } from '../../ssh/mask.js';
import { checkPlatform, renderHost } from '../../components/index.js';
import { RELEASE_NAMES, releaseNamed } from '../../components/base/release.js';
import { postgresMajor } from '../../components/patroni/paths.js';
import { effectiveTiming, timingSummary } from '../../components/patroni/timing.js';
import { dcsForPatroniVersion, PATRONI_RELEASES } from '../../components/patroni/version.js';
import type { Dcs, Platform } from '../../components/types.js';
import { maskedContent } from '../../render/mask.js';
import type { CommandContext } from '../context.js';

const SECRET_KEYS = ['superuser_password', 'replication_password', 'rewind_password', 'restapi_password'] as const;

export interface RenderFlags {
  output: string;
  host?: string;
  /** bookworm or trixie (or 12, 13). */
  release: string;
  /** Default: the release's Patroni. */
  patroniVersion?: string;
  showSecrets?: boolean;
}

/**
 * Writes DIR/HOST/<absolute path> for every rendered file; returns the paths written. Each file
 * ends with its mode whether or not it existed (0600 for secret files with --show-secrets, else
 * 0644): it is written to a private temp file, given its mode, then renamed over the old one.
 */
export async function renderToDir(inv: Inventory, dir: string, opts: { dcs: Dcs; platform?: Platform; host?: string; showSecrets?: boolean }): Promise<string[]> {
  const hosts = opts.host ? [inv.host(opts.host)] : inv.hosts;
  const written: string[] = [];
  for (const h of hosts) {
    for (const f of renderHost(inv, h.name, { dcs: opts.dcs, platform: opts.platform })) {
      const out = join(dir, h.name, f.path);
      await mkdir(dirname(out), { recursive: true });
      const content = opts.showSecrets ? f.content : maskedContent(f, inv);
      const tmp = join(dirname(out), `.${basename(out)}.pgha-${randomBytes(6).toString('hex')}`);
      try {
        await writeFile(tmp, content, { mode: 0o600, flag: 'wx' });
        // chmod: the umask may have narrowed the mode given at creation.
        await chmod(tmp, f.secret && opts.showSecrets ? 0o600 : 0o644);
        await rename(tmp, out);
      } catch (err) {
        await rm(tmp, { force: true });
        throw err;
      }
      written.push(out);
    }
  }
  return written;
}

export async function render(ctx: CommandContext, flags: RenderFlags): Promise<number> {
  const release = releaseNamed(flags.release);
  if (!release) throw new InputError(`--release ${JSON.stringify(flags.release)}: expected one of ${RELEASE_NAMES.join(', ')} (or 12, 13)`);
  const patroniVersion = flags.patroniVersion ?? PATRONI_RELEASES[release.name].patroni;
  const dcs = dcsForPatroniVersion(patroniVersion);
  const loaded = await ctx.inventory({ secretsOptional: true });
  if (loaded.secretsMissing && flags.showSecrets) {
    throw new InputError(`--show-secrets needs the secrets file ${loaded.secretsFile}, which does not exist (pgha init writes one)`);
  }
  // Without a secrets file every password is rendered as the mask it would be shown as anyway.
  const inv: Inventory = loaded.secretsMissing ? { ...loaded, secrets: Object.fromEntries(SECRET_KEYS.map((k) => [k, MASK])) as unknown as Secrets } : loaded;
  if (loaded.secretsMissing) ctx.err(`note: secrets file ${loaded.secretsFile} not found: passwords are rendered as ${MASK}
`);
  if (flags.host) inv.host(flags.host); // an unknown name is bad input
  const platform: Platform = { release, patroniVersions: [patroniVersion] };
  checkPlatform(inv, platform, dcs);
  const written = await renderToDir(inv, flags.output, { dcs, platform, host: flags.host, showSecrets: flags.showSecrets });
  for (const f of written) {
    const rel = relative(process.cwd(), f);
    ctx.out(`${rel && !rel.startsWith('..') ? rel : f}\n`);
  }
  const major = postgresMajor(inv, release);
  ctx.out(`${written.length} files rendered (${release.label}, PostgreSQL ${major}, Patroni ${patroniVersion}: DCS ${dcs}${flags.showSecrets ? '' : ', secrets masked'})\n`);
  ctx.out(`${timingSummary(inv.timing, effectiveTiming(inv.timing.patroni, [patroniVersion]))}\n`);
  return 0;
}
