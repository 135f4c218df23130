// Reading certificates (pure, Node's own X.509 parser: no library to load, so status stays fast):
// what a certificate names, until when it is valid, who issued it, and what is wrong with it for
// the place it is used in.
import { X509Certificate, createPublicKey } from 'node:crypto';
import { canonicalAddress } from '../../inventory/index.js';
import { describeNames, sameNames, type CertNames } from './names.js';

export interface CertInfo {
  names: CertNames;
  notBefore: Date;
  notAfter: Date;
  serial: string;
  issuer: string;
  /** SHA-256 fingerprint, as openssl prints it. */
  fingerprint: string;
  x509: X509Certificate;
}

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The certificates of a PEM text (a bundle holds several), each as one PEM block with a final newline. */
export function splitPems(text: string): string[] {
  return (text.match(PEM_BLOCK) ?? []).map((b) => `${b}\n`);
}

function parseSan(san: string | undefined): { dns: string[]; ip: string[] } {
  const dns: string[] = [];
  const ip: string[] = [];
  for (const part of (san ?? '').split(/,\s*/)) {
    const m = /^(DNS|IP Address):(.+)$/.exec(part.trim());
    if (!m) continue;
    if (m[1] === 'DNS') dns.push(m[2].toLowerCase());
    else ip.push(canonicalAddress(m[2]));
  }
  return { dns: [...new Set(dns)].sort(), ip: [...new Set(ip)].sort() };
}

/** A certificate's facts, or why it cannot be read. */
export function parseCert(pem: string): CertInfo | { error: string } {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(pem);
  } catch (err) {
    return { error: `not a readable certificate (${err instanceof Error ? err.message : String(err)})` };
  }
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(x509.subject)?.[1] ?? '';
  return {
    names: { cn, ...parseSan(x509.subjectAltName) },
    notBefore: new Date(x509.validFrom),
    notAfter: new Date(x509.validTo),
    serial: x509.serialNumber,
    issuer: x509.issuer.replace(/\n/g, ', '),
    fingerprint: x509.fingerprint256,
    x509,
  };
}

/** Whether `cert` was signed by `ca`. */
export function issuedBy(cert: X509Certificate, ca: X509Certificate): boolean {
  try {
    return cert.checkIssued(ca) && cert.verify(ca.publicKey);
  } catch {
    return false;
  }
}

/** Whole days from `now` until `date` (negative once past). */
export function daysLeft(date: Date, now: number): number {
  return Math.floor((date.getTime() - now) / 86_400_000);
}

/** The same public key (PEM, any format Node reads)? */
export function samePublicKey(cert: X509Certificate, publicKeyPem: string): boolean {
  try {
    const a = cert.publicKey.export({ type: 'spki', format: 'der' });
    const b = createPublicKey(publicKeyPem).export({ type: 'spki', format: 'der' });
    return a.equals(b);
  } catch {
    return false;
  }
}

export interface CertCheck {
  /** The CAs a valid certificate may be signed by (the cluster CA; during a rotation, only the new one for issuing). */
  trusted: X509Certificate[];
  wanted: CertNames;
  now: number;
  /** The public key of the private key on the host, when read (a certificate for another key is useless). */
  keyPublicPem?: string;
}

/** What is wrong with a certificate for its place, one phrase each (empty: nothing). Expiry soon is not wrong here. */
export function certProblems(info: CertInfo, c: CertCheck): string[] {
  const out: string[] = [];
  if (!c.trusted.some((ca) => issuedBy(info.x509, ca))) out.push(`not signed by the cluster CA (issuer: ${info.issuer})`);
  if (!sameNames(info.names, c.wanted)) {
    out.push(`names ${info.names.cn ? `CN=${info.names.cn}; ` : ''}${describeNames(info.names) || 'none'}, expected CN=${c.wanted.cn}; ${describeNames(c.wanted)}`);
  }
  if (info.notAfter.getTime() <= c.now) out.push(`expired on ${info.notAfter.toISOString()}`);
  else if (info.notBefore.getTime() > c.now + 300_000) out.push(`not valid before ${info.notBefore.toISOString()}`);
  if (c.keyPublicPem !== undefined && !samePublicKey(info.x509, c.keyPublicPem)) out.push('does not match the private key beside it');
  return out;
}
