// How pgha logs in: the ssh-agent and key files, in the order an operator's `ssh` would use them.
//   a key file named (inventory or ~/.ssh/config): that key; if it is encrypted, the agent first
//     when it holds that key, else the key decrypted with its passphrase (asked once per file);
//   no key file named: the agent (SSH_AUTH_SOCK), then ~/.ssh/id_ed25519, id_ecdsa, id_rsa.
// Everything is settled before the TCP connection opens: a passphrase prompt must not run
// against the handshake's timeout. Decrypted keys are kept for the run (bcrypt takes a second).
import { existsSync, readFileSync, statSync } from 'node:fs';
import ssh2 from 'ssh2';
import type { ParsedKey } from 'ssh2';
import { HostError, PghaError } from '../errors.js';
import type { HostTarget } from './target.js';

const { utils, createAgent } = ssh2;

/** Where a passphrase comes from (the CLI: PGHA_SSH_PASSPHRASE, else a prompt on a terminal); undefined: none available. */
export type PassphraseSource = (keyPath: string, retry: string | undefined) => Promise<string | undefined>;

/** One way to log in, in the order tried. */
export type AuthMethod = { kind: 'agent'; socket: string } | { kind: 'key'; path: string; key: ParsedKey };

const decrypted = new Map<string, ParsedKey>();
// One decryption per key file at a time: parallel connections share its passphrase prompt.
const decrypting = new Map<string, Promise<ParsedKey>>();

/** An encrypted key's public half, without its passphrase: from the OpenSSH format's clear header, or KEY.pub. */
export function publicBlobOf(path: string, text: string): Buffer | null {
  const m = /-----BEGIN OPENSSH PRIVATE KEY-----([\s\S]*?)-----END OPENSSH PRIVATE KEY-----/.exec(text);
  if (m) {
    try {
      const b = Buffer.from(m[1].replace(/\s+/g, ''), 'base64');
      const magic = 'openssh-key-v1\0';
      if (b.subarray(0, magic.length).toString('latin1') === magic) {
        let off = magic.length;
        const next = () => {
          const n = b.readUInt32BE(off);
          const s = b.subarray(off + 4, off + 4 + n);
          off += 4 + n;
          return s;
        };
        next(); // cipher
        next(); // kdf
        next(); // kdf options
        const count = b.readUInt32BE(off);
        off += 4;
        if (count >= 1) return Buffer.from(next());
      }
    } catch {
      // a damaged key: no public half from here
    }
  }
  try {
    const pub = utils.parseKey(readFileSync(`${path}.pub`));
    if (!(pub instanceof Error)) return (Array.isArray(pub) ? pub[0] : pub).getPublicSSH();
  } catch {
    // no .pub beside it
  }
  return null;
}

/** The public key blobs the agent holds (empty when it does not answer). */
export function agentKeys(socket: string): Promise<Buffer[]> {
  return new Promise((resolve) => {
    let agent;
    try {
      agent = createAgent(socket);
    } catch {
      resolve([]);
      return;
    }
    const timer = setTimeout(() => resolve([]), 3000);
    agent.getIdentities((err, keys) => {
      clearTimeout(timer);
      resolve(err || !keys ? [] : keys.flatMap((k) => (typeof k === 'object' && 'getPublicSSH' in k ? [(k as ParsedKey).getPublicSSH()] : [])));
    });
  });
}

/** Said of an encrypted key file that no passphrase came for (a connection keeper reads it to let its client connect instead). */
export const NO_PASSPHRASE = 'is encrypted and no passphrase was given';

const isEncryptedError = (e: Error) => /encrypted .*no passphrase given/i.test(e.message);

/** A key file parsed (decrypted with a passphrase from `source` when it is encrypted); a HostError says what is missing. */
async function loadKey(target: HostTarget, path: string, text: string, source: PassphraseSource | undefined): Promise<ParsedKey> {
  const cached = decrypted.get(path);
  if (cached) return cached;
  const first = utils.parseKey(text);
  if (!(first instanceof Error)) return Array.isArray(first) ? first[0] : first;
  if (!isEncryptedError(first)) throw new HostError(target.name, `cannot use the private key ${path}: ${first.message}`);
  if (!decrypting.has(path)) {
    const p = decrypt(path, text, source);
    decrypting.set(path, p);
    p.catch(() => decrypting.delete(path));
  }
  // Said about the host that asked (the first asker's failure is every waiting host's too).
  return decrypting.get(path)!.catch((err: unknown) => {
    if (err instanceof PghaError && !(err instanceof HostError)) throw new HostError(target.name, err.message, err.exitCode);
    throw err;
  });
}

async function decrypt(path: string, text: string, source: PassphraseSource | undefined): Promise<ParsedKey> {
  let problem: string | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    const passphrase = await source?.(path, problem);
    if (passphrase === undefined && problem) throw new PghaError(problem);
    if (passphrase === undefined) {
      throw new PghaError(
        `the private key ${path} ${NO_PASSPHRASE}: load it into ssh-agent (ssh-add ${path}), ` +
          'set PGHA_SSH_PASSPHRASE, or run pgha on a terminal to be asked for it',
      );
    }
    const key = utils.parseKey(text, passphrase);
    if (!(key instanceof Error)) {
      const parsed = Array.isArray(key) ? key[0] : key;
      decrypted.set(path, parsed);
      return parsed;
    }
    problem = `wrong passphrase for ${path}`;
  }
  throw new PghaError(`${problem}: giving up after 3 tries`);
}

function readKey(target: HostTarget, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new HostError(target.name, `cannot read the private key ${path}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
}

/** The login methods for a target, in order; throws a HostError when there is none. */
export async function authMethods(target: HostTarget, source?: PassphraseSource): Promise<AuthMethod[]> {
  const socket = target.agentSocket && existsSync(target.agentSocket) ? target.agentSocket : undefined;
  const agent: AuthMethod[] = socket ? [{ kind: 'agent', socket }] : [];
  const held = socket ? await agentKeys(socket) : [];
  // An encrypted key the agent holds needs no passphrase: the agent signs with it.
  const inAgent = (path: string, text: string) => {
    const blob = publicBlobOf(path, text);
    return blob !== null && held.some((k) => k.equals(blob));
  };
  if (target.privateKeyPath) {
    const text = readKey(target, target.privateKeyPath);
    const plain = utils.parseKey(text);
    if (plain instanceof Error && isEncryptedError(plain) && inAgent(target.privateKeyPath, text) && !decrypted.has(target.privateKeyPath)) return agent;
    return [{ kind: 'key', path: target.privateKeyPath, key: await loadKey(target, target.privateKeyPath, text, source) }];
  }
  const methods = [...agent];
  for (const path of target.defaultKeyPaths ?? []) {
    if (!existsSync(path) || !statSync(path).isFile()) continue;
    const text = readKey(target, path);
    const plain = utils.parseKey(text);
    if (!(plain instanceof Error)) methods.push({ kind: 'key', path, key: Array.isArray(plain) ? plain[0] : plain });
    else if (!isEncryptedError(plain)) continue; // not a key ssh2 reads: ssh would skip it too
    else if (inAgent(path, text)) continue; // the agent covers it
    else if (!socket) methods.push({ kind: 'key', path, key: await loadKey(target, path, text, source) });
    // With an agent running, an encrypted default key that is not in it is left out (no prompt).
  }
  if (methods.length === 0) {
    throw new HostError(
      target.name,
      'no SSH key to log in with: set ssh.private_key in the inventory (or IdentityFile in ~/.ssh/config), ' +
        `load a key into ssh-agent (${target.agentSocket ? `the agent at ${target.agentSocket} does not answer` : 'SSH_AUTH_SOCK is not set'}), ` +
        `or create one of ${(target.defaultKeyPaths ?? []).join(', ') || '~/.ssh/id_ed25519'}`,
    );
  }
  return methods;
}

/** What was tried, for an authentication failure. */
export function describeMethods(methods: AuthMethod[]): string {
  return methods.map((m) => (m.kind === 'agent' ? `the ssh-agent's keys (${m.socket})` : `the key ${m.path}`)).join(', then ');
}

/** ssh2's authHandler over the methods, in order (false: none left). */
export function authHandler(methods: AuthMethod[], username: string) {
  const queue = [...methods];
  return (_left: unknown, _partial: unknown, next: (auth: unknown) => void): void => {
    const m = queue.shift();
    if (!m) return next(false);
    next(m.kind === 'agent' ? { type: 'agent', username, agent: m.socket } : { type: 'publickey', username, key: m.key });
  };
}
