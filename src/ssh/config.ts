// ~/.ssh/config, read as ssh reads it (first value wins) with the `ssh-config` parser, for the
// values pgha takes from it when the inventory does not set them: HostName, User, Port,
// IdentityFile and ProxyJump. `Match exec` is not evaluated (no shell runs on pgha's behalf).
import { readFileSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import SSHConfig from 'ssh-config';
import { InputError } from '../errors.js';

export interface SshConfigValues {
  hostName?: string;
  user?: string;
  port?: number;
  /** Every IdentityFile, in order, ~ and %d/%u/%h/%r expanded. */
  identityFiles: string[];
  proxyJump?: string;
}

const parsed = new Map<string, SSHConfig | null>();

/** The parsed file (null when it does not exist); read once per run. */
function load(file: string): SSHConfig | null {
  if (!parsed.has(file)) {
    let text: string | null = null;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new InputError(`cannot read the SSH client config ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`);
    }
    try {
      parsed.set(file, text === null ? null : SSHConfig.parse(text));
    } catch (err) {
      throw new InputError(`cannot parse the SSH client config ${file}: ${(err as Error).message}`);
    }
  }
  return parsed.get(file)!;
}

const first = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);

/** ssh's tokens in IdentityFile: ~, %d (home), %u (local user), %h (host), %r (remote user), %%. */
function expandTokens(p: string, host: string, user: string | undefined): string {
  const home = homedir();
  const out = p.replace(/%([%duhr])/g, (_, t: string) => ({ '%': '%', d: home, u: userInfo().username, h: host, r: user ?? '' })[t] ?? '');
  if (out === '~' || out.startsWith('~/')) return resolve(home, out.slice(2));
  return isAbsolute(out) ? out : resolve(home, '.ssh', out);
}

/** What `file` says for the first of `names` it has a value for (ssh looks up the name given on its command line). */
export function sshConfigFor(file: string | null, names: string[]): SshConfigValues {
  const values: SshConfigValues = { identityFiles: [] };
  const config = file ? load(file) : null;
  if (!config) return values;
  for (const name of names) {
    const c = config.compute(name, { ignoreCase: true, matchExec: false });
    values.hostName ??= first(c.hostname)?.replace(/%h/g, name);
    values.user ??= first(c.user);
    const port = first(c.port);
    if (values.port === undefined && port !== undefined && /^\d+$/.test(port)) values.port = Number(port);
    values.proxyJump ??= first(c.proxyjump);
    if (!values.identityFiles.length && c.identityfile) {
      const files = Array.isArray(c.identityfile) ? c.identityfile : [c.identityfile];
      values.identityFiles = files.map((f) => expandTokens(f, values.hostName ?? name, values.user));
    }
  }
  return values;
}
