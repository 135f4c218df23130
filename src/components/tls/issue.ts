// Certificates issued where they are used: the key is made on the host (openssl, owned by the
// service's user, mode 0600) and never leaves it; the host makes a signing request, pgha signs it
// with the cluster CA on the operator's machine and puts the certificate back. A certificate is
// kept until its names change, it comes within tls.renew_before_days of its end, it is not the
// cluster CA's, or it does not match its key; each re-issue says why. One operation per host and
// service, so a run lists "node1: changed certificate postgres: re-issue (...)".
import type { X509Certificate } from 'node:crypto';
import type { Operation } from '../../engine/index.js';
import type { Host, Inventory } from '../../inventory/index.js';
import type { Connection } from '../../ssh/index.js';
import type { Ca } from './ca.js';
import { issueCertificate } from './ca.js';
import type { HostTls } from './facts.js';
import { certProblems, daysLeft, parseCert } from './inspect.js';
import { describeNames, wantedNames } from './names.js';
import { certFile, keyFile, SERVICE_USER, type TlsService } from './paths.js';

export interface IssueOptions {
  /** The CA that signs new certificates (during a CA rotation: the new one). */
  signer: () => Promise<Ca>;
  /** CAs whose certificates are kept (the cluster CA; during a rotation, the new one too). */
  trusted: X509Certificate[];
  /** This host's TLS facts, read once for all its services. */
  facts: () => Promise<HostTls>;
  /** A new key and certificate whatever the state (`pgha tls renew`). */
  renew?: boolean;
  now?: number;
  /** Called after a certificate was written (the service must pick it up). */
  onIssued?: (host: string, service: TlsService) => void;
}

interface Plan {
  newKey: boolean;
  /** Why a certificate is issued, or null: kept. */
  issue: string | null;
  keyAttrs: string[];
  certAttrs: string[];
}

const oct = (m: number) => m.toString(8).padStart(4, '0');

function attrFixes(f: { owner: string; group: string; mode: number } | null, user: string, mode: number): string[] {
  if (!f) return [];
  const out: string[] = [];
  if (f.owner !== user) out.push(`owner ${f.owner} -> ${user}`);
  if (f.group !== user) out.push(`group ${f.group} -> ${user}`);
  if ((f.mode & 0o7777) !== mode) out.push(`mode ${oct(f.mode)} -> ${oct(mode)}`);
  return out;
}

/** What to do about one service's key and certificate on a host (pure). */
export function planCertificate(inv: Inventory, host: Host, service: TlsService, facts: HostTls, o: Pick<IssueOptions, 'trusted' | 'renew' | 'now'>): Plan {
  const s = facts.services[service] ?? { key: null, cert: null };
  const user = SERVICE_USER[service];
  const now = o.now ?? Date.now();
  const keyOk = s.key !== null && s.key.publicKeyPem !== null;
  const plan: Plan = { newKey: !keyOk || o.renew === true, issue: null, keyAttrs: keyOk && !o.renew ? attrFixes(s.key, user, 0o600) : [], certAttrs: [] };
  if (o.renew) plan.issue = 'renewal, with a new key';
  else if (!s.key) plan.issue = 'no key yet';
  else if (!keyOk) plan.issue = 'the key on the host cannot be read as a private key: a new one';
  else if (!s.cert) plan.issue = 'no certificate yet';
  else {
    const info = parseCert(s.cert.pem);
    if ('error' in info) plan.issue = `the certificate on the host is ${info.error}`;
    else {
      const wanted = wantedNames(inv, host, service);
      const problems = certProblems(info, { trusted: o.trusted, wanted, now, keyPublicPem: s.key.publicKeyPem! });
      const left = daysLeft(info.notAfter, now);
      if (problems.length) plan.issue = problems.join('; ');
      else if (left < inv.tls.renew_before_days) plan.issue = `expires on ${info.notAfter.toISOString().slice(0, 10)}, within tls.renew_before_days (${inv.tls.renew_before_days})`;
      else plan.certAttrs = attrFixes(s.cert, user, 0o644);
    }
  }
  return plan;
}

const run = (conn: Connection, script: string, ...args: string[]) => conn.run(['sh', '-c', script, 'sh', ...args], { display: `${script.split('\n')[0]} ${args.join(' ')}` });

// A key made by the host itself, private from the first byte (umask), then given to the service.
const NEW_KEY = 'umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null && chown -- "$2:$2" "$1" && chmod 0600 -- "$1"';
const CSR = 'exec openssl req -new -key "$1" -subj "/CN=$2"';
// Key and certificate change together: two renames, one right after the other.
const SWAP = 'mv -f -- "$1.new" "$1" && mv -f -- "$2.new" "$2"';
const FIX = 'chown -- "$2:$2" "$1" && chmod "$3" -- "$1"';

/** The operation for one service's certificate on one host. */
export function certificateOp(inv: Inventory, host: Host, service: TlsService, o: IssueOptions): Operation {
  const user = SERVICE_USER[service];
  const key = keyFile(service);
  const cert = certFile(service);
  let plan: Plan | undefined;
  return {
    describe: `certificate ${service}`,
    async check() {
      plan = planCertificate(inv, host, service, await o.facts(), o);
      const parts: string[] = [];
      if (plan.issue) parts.push(`issue (${plan.issue}) for ${describeNames(wantedNames(inv, host, service))}`);
      if (plan.keyAttrs.length) parts.push(`key ${plan.keyAttrs.join(', ')}`);
      if (plan.certAttrs.length) parts.push(`certificate ${plan.certAttrs.join(', ')}`);
      return parts.length ? { summary: parts.join('; ') } : null;
    },
    async apply(conn) {
      const p = plan!;
      if (p.issue) {
        const keyPath = p.newKey ? `${key}.new` : key;
        if (p.newKey) await run(conn, NEW_KEY, keyPath, user);
        const csr = (await run(conn, CSR, keyPath, host.name)).stdout;
        const pem = await issueCertificate(await o.signer(), csr, wantedNames(inv, host, service), inv.tls.cert_days, new Date(o.now ?? Date.now()));
        const attrs = { owner: user, group: user, mode: 0o644 };
        if (p.newKey) {
          await conn.writeFileAtomic(`${cert}.new`, pem, attrs);
          await run(conn, SWAP, key, cert);
        } else {
          await conn.writeFileAtomic(cert, pem, attrs);
        }
        o.onIssued?.(host.name, service);
      }
      if (p.keyAttrs.length) await run(conn, FIX, key, user, '0600');
      if (p.certAttrs.length && !p.issue) await run(conn, FIX, cert, user, '0644');
    },
  };
}
