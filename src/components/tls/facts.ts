// A host's TLS state (a fact: one script run on the host, plus a pure parser): per service its
// key (owner, mode and public half: the private key itself is never read off the host) and its
// certificate, and the CA bundle the host trusts.
import type { Connection, EachCommand } from '../../ssh/index.js';
import { CA_BUNDLE, TLS_DIR, type TlsService } from './paths.js';

export interface FileAttrs {
  owner: string;
  group: string;
  mode: number;
}

export interface ServiceTls {
  /** null: no key file. */
  key: (FileAttrs & { publicKeyPem: string | null }) | null;
  /** null: no certificate file. */
  cert: (FileAttrs & { pem: string }) | null;
}

export interface HostTls {
  services: Partial<Record<TlsService, ServiceTls>>;
  /** The CA bundle's text, or null when the host has none. */
  bundle: string | null;
}

// `openssl pkey -pubout` prints the public key only. Markers start with @@ (PEM lines never do).
// Each file's stat runs without a subshell: status asks this of every host each time, and processes
// are most of what it costs a host. First, one stat of every file it reads (device and inode, change time
// to the nanosecond, size, owner and mode): when that is what the caller last saw ($1), the files
// are the ones it read then, and the answer is only "@@same" (no openssl, no cat).
const TLS_FACTS = `known=$1; shift
d=${TLS_DIR}
services=$*
set --
for s in $services; do set -- "$@" "$d/$s.key" "$d/$s.crt"; done
id=$(stat -c '%n %d:%i %z %s %U %G %a' -- "$@" ${CA_BUNDLE} 2>&1)
if [ -n "$known" ] && [ "$id" = "$known" ]; then echo "@@same"; exit 0; fi
echo "@@id"; printf '%s\\n' "$id"; echo "@@endid"
for s in $services; do
  echo "@@service $s"
  k=$d/$s.key
  c=$d/$s.crt
  if [ -f "$k" ]; then
    printf '@@key '; stat -c '%U %G %a' -- "$k"
    openssl pkey -in "$k" -pubout 2>/dev/null || echo "@@badkey"
  else
    echo "@@nokey"
  fi
  if [ -f "$c" ]; then printf '@@cert '; stat -c '%U %G %a' -- "$c"; cat -- "$c"; echo; else echo "@@nocert"; fi
done
if [ -f ${CA_BUNDLE} ]; then echo "@@bundle"; cat ${CA_BUNDLE}; fi`;

function attrs(line: string): FileAttrs {
  const [owner, group, mode] = line.split(' ');
  return { owner, group, mode: parseInt(mode, 8) };
}

/** The TLS_FACTS script's output, read. */
export function parseTlsFacts(stdout: string): HostTls {
  const out: HostTls = { services: {}, bundle: null };
  let service: ServiceTls | undefined;
  let into: 'key' | 'cert' | 'bundle' | null = null;
  let text = '';
  const flush = () => {
    if (into === 'key' && service?.key) service.key.publicKeyPem = text.includes('PUBLIC KEY') ? text : null;
    if (into === 'cert' && service?.cert) service.cert.pem = text;
    if (into === 'bundle') out.bundle = text;
    into = null;
    text = '';
  };
  for (const line of stdout.split('\n')) {
    const m = /^@@(\w+)(?: (.*))?$/.exec(line);
    if (!m) {
      if (into) text += `${line}\n`;
      continue;
    }
    flush();
    const [, what, rest = ''] = m;
    if (what === 'service') {
      service = { key: null, cert: null };
      out.services[rest as TlsService] = service;
    } else if (what === 'key' && service) {
      service.key = { ...attrs(rest), publicKeyPem: null };
      into = 'key';
    } else if (what === 'cert' && service) {
      service.cert = { ...attrs(rest), pem: '' };
      into = 'cert';
    } else if (what === 'bundle') {
      into = 'bundle';
    }
  }
  flush();
  return out;
}

/**
 * The command reading a host's TLS state for its services (as root: the keys are their services'
 * own). `known`: the files' identity from an earlier answer (tlsFactsIdentity): when they have
 * not changed since, the answer is "same" (tlsFactsSame) and that earlier answer holds.
 */
/** The files whose identity (the first line of TLS_FACTS's answer) says a host's TLS files are unchanged, in its order. */
export const tlsIdentityFiles = (services: readonly TlsService[]): string[] => [...services.flatMap((s) => [`${TLS_DIR}/${s}.key`, `${TLS_DIR}/${s}.crt`]), CA_BUNDLE];

export function tlsFactsCommand(services: readonly TlsService[], known = ''): EachCommand {
  return { cmd: ['sh', '-c', TLS_FACTS, 'sh', known, ...services], display: `TLS facts: ${services.join(' ') || 'CA bundle'}` };
}

/** Whether the answer says the files are the ones of the identity the command was given. */
export const tlsFactsSame = (stdout: string) => stdout.trim() === '@@same';

/** The files' identity in a full answer ('' when there is none). */
export function tlsFactsIdentity(stdout: string): string {
  const m = /^@@id\n([\s\S]*?)\n?@@endid$/m.exec(stdout);
  return m ? m[1] : '';
}

/** Reads a host's TLS state for its services. */
export async function readTlsFacts(conn: Connection, services: readonly TlsService[]): Promise<HostTls> {
  const { cmd, display } = tlsFactsCommand(services);
  return parseTlsFacts((await conn.run(cmd, { display, timeoutMs: 30_000 })).stdout);
}
