// `pgha init`: answers (wizard or flags) -> inventory + secrets (+ known_hosts) -> checked ->
// written all at once. Nothing is written until every answer is in and the result validates.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, extname, isAbsolute, join, relative, resolve } from 'node:path';
import { EXIT, InputError, PghaError } from '../../errors.js';
import { packagePath } from '../../package-files.js';
import { answerProblems, type InitAnswers } from './answers.js';
import { answersFromFlags, type InitFlags } from './flags.js';
import { fingerprint, keyTypeOf, knownHostsLine, sshProbe, type HostProbe } from './hostkeys.js';
import { generateSecrets, renderInventory, renderSecrets } from './render.js';
import { loadInventory } from '../../inventory/index.js';
import { hostFieldMatches, parseKnownHosts } from '../../ssh/known-hosts.js';
import { askAnswers, askHostKeys, askOverwrite, askWrite, summary, type ConfirmedKey, type PromptContext } from './wizard.js';
import { stage, type OutFile } from './write.js';

export type { InitFlags } from './flags.js';

export interface InitDeps {
  /** True when both stdin and stdout are terminals. */
  tty: boolean;
  /** Prompt streams (tests); the terminal when absent. */
  context?: PromptContext;
  /** Normal output (the summary, notes). */
  out(text: string): void;
  cwd?: string;
  home?: string;
  probe?: HostProbe;
  /** Checks the staged inventory (default: loadInventory); throws InputError on problems. */
  validate?: (file: string) => Promise<unknown>;
}

interface Paths {
  inventory: string;
  secrets: string;
  knownHosts: string;
}

// The package's JSON Schema, for the yaml-language-server hint.
const SCHEMA_FILE = packagePath('schema/inventory.schema.json');

function relRef(fromDir: string, to: string): string {
  const r = relative(fromDir, to);
  return r === '' ? '.' : r;
}

const tilde = (p: string, home: string) => (p === '~' ? home : p.startsWith('~/') ? join(home, p.slice(2)) : p);

function resolvePaths(f: InitFlags, cwd: string, home: string): Paths {
  const inventory = resolve(cwd, tilde(f.output ?? 'inventory.yml', home));
  const dir = dirname(inventory);
  const stem = basename(inventory, extname(inventory));
  return {
    inventory,
    secrets: f.secrets ? resolve(cwd, tilde(f.secrets, home)) : join(dir, `${stem}.secrets.yml`),
    knownHosts: f.knownHosts ? resolve(cwd, tilde(f.knownHosts, home)) : join(dir, 'known_hosts'),
  };
}

/**
 * A path as the inventory should hold it: as the operator gave it when absolute or ~/..., a path
 * relative to the current directory made relative to the inventory's (which relative paths in an
 * inventory are resolved against), and a default relative to it.
 */
function written(given: string | undefined, abs: string, inventoryDir: string): string {
  if (given !== undefined && (isAbsolute(given) || given === '~' || given.startsWith('~/'))) return given;
  return relRef(inventoryDir, abs);
}

/** Hosts with no key for their address and SSH port in the known_hosts text. */
function hostsWithoutKey(a: InitAnswers, knownHosts: string): string[] {
  const entries = parseKnownHosts(knownHosts).filter((e) => e.marker === '');
  return a.hosts.filter((h) => !entries.some((e) => hostFieldMatches(e.hosts, h.address, a.ssh.port))).map((h) => h.name);
}

const isExitPrompt = (err: unknown) => err instanceof Error && err.name === 'ExitPromptError';

export async function runInit(flags: InitFlags, deps: InitDeps): Promise<void> {
  const cwd = deps.cwd ?? process.cwd();
  const home = deps.home ?? homedir();
  const expandHome = (p: string) => (p === '~' ? home : p.startsWith('~/') ? join(home, p.slice(2)) : resolve(dirname(paths.inventory), p));
  const probe = deps.probe ?? sshProbe;
  const paths = resolvePaths(flags, cwd, home);
  const interactive = deps.tty && !flags.nonInteractive && !flags.name && !flags.host?.length;
  const show = (p: string) => relative(cwd, p) || p;
  // Existing files init would replace; known_hosts is only ever added to.
  const existing = [paths.inventory, paths.secrets].filter((p) => existsSync(p));
  const notAFile = [paths.inventory, paths.secrets, paths.knownHosts].filter((p) => existsSync(p) && !statSync(p).isFile());
  if (notAFile.length) {
    throw new InputError('init: these paths exist and are not files, expected a file (or nothing) there:', notAFile.map((p) => `  ${show(p)}`));
  }

  let answers: InitAnswers;
  let keys: ConfirmedKey[] = [];
  if (interactive) {
    const io = { context: deps.context, say: (t: string) => deps.out(`${t}\n`), expandHome, home };
    try {
      if (existing.length && !flags.force && !(await askOverwrite(io, existing.map(show)))) {
        throw new InputError('nothing written: the existing files were kept');
      }
      answers = await askAnswers(io);
      const problems = answerProblems(answers);
      if (problems.length) throw new InputError('init: the answers do not make a valid cluster:', problems.map((p) => `  ${p}`));
      const test = await askHostKeys(io, answers, probe);
      keys = test.keys;
      io.say(summary(answers, test));
      if (!(await askWrite(io, test))) {
        throw new PghaError(
          test.tested && test.reached.length === 0
            ? 'nothing written: no host answered over SSH (run init again once they do, or answer yes to write anyway)'
            : 'nothing written',
        );
      }
    } catch (err) {
      if (isExitPrompt(err)) throw new PghaError('interrupted: nothing was written', EXIT.interrupted);
      throw err;
    }
  } else {
    const r = answersFromFlags(flags);
    if (r.problems.length) {
      throw new InputError(
        `init: ${r.problems.length} problem${r.problems.length === 1 ? '' : 's'} with the flags (see pgha init --help):`,
        r.problems.map((p) => `  ${p}`),
      );
    }
    answers = r.answers;
    if (existing.length && !flags.force) {
      throw new InputError(
        'init: refusing to overwrite existing files (add --force to replace them):',
        existing.map((p) => `  ${show(p)}`),
      );
    }
    if (answers.ssh.privateKey !== null && !existsSync(expandHome(answers.ssh.privateKey))) {
      deps.out(`note: the SSH private key ${answers.ssh.privateKey} does not exist on this machine.\n`);
    }
    if (flags.scanHostKeys) {
      if (!flags.yes) throw new InputError('init: --scan-host-keys trusts keys nobody has checked: add --yes to confirm that');
      keys = await scanKeys(answers, probe, deps.out);
      if (keys.length === 0 && !flags.writeAnyway) {
        throw new PghaError('init: no host answered over SSH, so nothing was written: check the addresses and the SSH port (or add --write-anyway)');
      }
    }
  }

  const dir = dirname(paths.inventory);
  const inventoryText = renderInventory(answers, {
    schema: relRef(dir, SCHEMA_FILE),
    secrets: written(flags.secrets, paths.secrets, dir),
    knownHosts: written(flags.knownHosts, paths.knownHosts, dir),
  });
  const files: OutFile[] = [
    { path: paths.secrets, content: renderSecrets(answers.clusterName, generateSecrets()), mode: 0o600 },
    { path: paths.inventory, content: inventoryText, mode: 0o644 },
  ];
  const knownHosts = mergeKnownHosts(paths.knownHosts, keys);
  if (keys.length) files.push({ path: paths.knownHosts, content: knownHosts, mode: 0o644 });

  const staged = await stage(files);
  // Messages name the files init writes, never their temp names (gone once discarded).
  const targets = [...staged.temps].map(([target, temp]) => [temp, show(target)] as const);
  const realNames = (text: string) => targets.reduce((t, [temp, target]) => t.split(temp).join(target), text);
  try {
    // The staged inventory sits beside its target, so its relative paths resolve the same; the
    // secrets file is still under its temp name, and init generated it, so it is not re-read.
    const validate = deps.validate ?? ((f: string) => loadInventory(f, { secrets: false }));
    await validate(staged.temps.get(paths.inventory)!);
  } catch (err) {
    await staged.discard();
    if (err instanceof PghaError) {
      throw new PghaError(
        `init: the generated inventory does not validate (a bug in pgha init): ${realNames(err.message)}`,
        EXIT.bug,
        err.lines.map(realNames),
      );
    }
    throw err;
  }
  await staged.commit();

  const inv = show(paths.inventory);
  const lines = ['', 'Written:', `  ${inv}  (inventory)`, `  ${show(paths.secrets)}  (secrets, mode 0600: keep it out of version control)`];
  if (keys.length) lines.push(`  ${show(paths.knownHosts)}  (${keys.length} confirmed host key${keys.length === 1 ? '' : 's'})`);
  // Hosts whose key is in known_hosts (confirmed now, or there already) need no --accept-new-host-keys.
  const unknown = hostsWithoutKey(answers, knownHosts);
  lines.push('', 'Next steps:', `  pgha validate -i ${inv}`);
  if (unknown.length > 0) {
    lines.push(`  pgha apply -i ${inv} --accept-new-host-keys   (records the host key${unknown.length === 1 ? '' : 's'} of ${unknown.join(', ')}, not in ${show(paths.knownHosts)} yet)`);
  } else {
    lines.push(`  pgha apply -i ${inv}   (every host key is in ${show(paths.knownHosts)})`);
  }
  deps.out(lines.join('\n') + '\n');
}

async function scanKeys(a: InitAnswers, probe: HostProbe, out: (t: string) => void): Promise<ConfirmedKey[]> {
  const keys: ConfirmedKey[] = [];
  for (const h of a.hosts) {
    try {
      const key = await probe.fetchKey(h.address, a.ssh.port);
      out(`${h.name} (${h.address}:${a.ssh.port}) host key: ${keyTypeOf(key)} ${fingerprint(key)} (recorded, --yes)\n`);
      keys.push({ host: h.name, address: h.address, port: a.ssh.port, key });
    } catch (err) {
      out(`${h.name} (${h.address}): cannot read its host key: ${(err as Error).message}\n`);
    }
  }
  return keys;
}

function mergeKnownHosts(file: string, keys: ConfirmedKey[]): string {
  let text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  if (text !== '' && !text.endsWith('\n')) text += '\n';
  for (const k of keys) {
    const l = knownHostsLine(k.address, k.port, k.key);
    if (!text.split('\n').includes(l)) text += `${l}\n`;
  }
  return text;
}
