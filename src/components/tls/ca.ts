// The cluster CA on the operator's machine: made once, beside the secrets file (key mode 0600,
// never printed), and the one place host certificates are signed: a host sends a certificate
// signing request made with a key that never leaves it, pgha checks the request's signature and
// issues a certificate with the names pgha decides (the request's own names are ignored).
// X.509 building is @peculiar/x509 over Node's WebCrypto, loaded only when something is signed.
import { randomBytes, webcrypto, X509Certificate } from 'node:crypto';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
import { link, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { InputError, PghaError } from '../../errors.js';
import type { Inventory } from '../../inventory/index.js';
import type { CertNames } from './names.js';
import { caPaths } from './paths.js';
import { samePublicKey, splitPems } from './inspect.js';

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

type X509Lib = typeof import('@peculiar/x509');
let lib: Promise<X509Lib> | undefined;
/** @peculiar/x509 (it needs the reflect-metadata polyfill), on Node's WebCrypto. */
function x509(): Promise<X509Lib> {
  lib ??= (async () => {
    await import('reflect-metadata');
    const x = await import('@peculiar/x509');
    x.cryptoProvider.set(webcrypto as never);
    return x;
  })();
  return lib;
}

export interface Ca {
  certPem: string;
  cert: X509Certificate;
  key: CryptoKey;
  /** Where it was read from (for messages). */
  certPath: string;
}

const pemBody = (pem: string, label: string) => {
  const m = new RegExp(`-----BEGIN ${label}-----([\\s\\S]+?)-----END ${label}-----`).exec(pem);
  if (!m) return null;
  return Buffer.from(m[1].replace(/\s+/g, ''), 'base64');
};
const toPem = (der: ArrayBuffer, label: string) =>
  `-----BEGIN ${label}-----\n${Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END ${label}-----\n`;

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Reads a CA (certificate and key); null when neither file exists. A half or a mismatch is an error. */
export async function loadCa(certPath: string, keyPath: string): Promise<Ca | null> {
  const [haveCert, haveKey] = await Promise.all([exists(certPath), exists(keyPath)]);
  if (!haveCert && !haveKey) return null;
  if (!haveKey) throw new InputError(`the CA key ${keyPath} is missing (its certificate ${certPath} is there): restore it from your backup, or rotate the CA with pgha tls renew --ca`);
  if (!haveCert) throw new InputError(`the CA certificate ${certPath} is missing (its key ${keyPath} is there): restore it from your backup`);
  const mode = (await stat(keyPath)).mode & 0o777;
  if (mode & 0o077) throw new InputError(`the CA key ${keyPath} has mode ${mode.toString(8).padStart(4, '0')}, expected 0600 (no access for group and others); fix: chmod 600 ${keyPath}`);
  const certPem = splitPems(await readFile(certPath, 'utf8'))[0];
  if (!certPem) throw new InputError(`${certPath} holds no PEM certificate`);
  const cert = new X509Certificate(certPem);
  const der = pemBody(await readFile(keyPath, 'utf8'), 'PRIVATE KEY');
  if (!der) throw new InputError(`${keyPath} holds no PKCS#8 private key (-----BEGIN PRIVATE KEY-----)`);
  let key: CryptoKey;
  try {
    key = await webcrypto.subtle.importKey('pkcs8', der, { name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign']);
  } catch {
    throw new InputError(`${keyPath} is not an ECDSA P-256 private key`);
  }
  // The public half, from the private key (JWK carries x and y), must be the certificate's.
  const jwk = await webcrypto.subtle.exportKey('jwk', key);
  const pub = await webcrypto.subtle.importKey('jwk', { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y }, { name: 'ECDSA', namedCurve: 'P-256' }, true, ['verify']);
  const spki = toPem(await webcrypto.subtle.exportKey('spki', pub), 'PUBLIC KEY');
  if (!samePublicKey(cert, spki)) throw new InputError(`the CA key ${keyPath} does not belong to the CA certificate ${certPath}`);
  return { certPem, cert, key, certPath };
}

/** The cluster's CA (null: not made yet). */
export function loadClusterCa(inv: Pick<Inventory, 'secretsFile' | 'cluster'>): Promise<Ca | null> {
  const p = caPaths(inv);
  return loadCa(p.cert, p.key);
}

/** The new CA of a rotation in progress (null: none). */
export function loadNextCa(inv: Pick<Inventory, 'secretsFile' | 'cluster'>): Promise<Ca | null> {
  const p = caPaths(inv);
  return loadCa(p.nextCert, p.nextKey);
}

/** A positive 128-bit serial number, hex. */
const serial = () => {
  const b = randomBytes(16);
  b[0] &= 0x7f;
  b[0] |= 0x10; // no leading zero byte to strip
  return b.toString('hex');
};

/**
 * Makes a CA and writes its key (0600) and certificate (0644), never over existing files: the key
 * is linked into place, which fails if one is there already.
 */
export async function createCa(inv: Pick<Inventory, 'cluster' | 'tls'>, certPath: string, keyPath: string, now = new Date()): Promise<Ca> {
  const x = await x509();
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const notAfter = new Date(now.getTime() + inv.tls.ca_days * 86_400_000);
  const cert = await x.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=pgha CA of cluster ${inv.cluster.name} (${now.toISOString().slice(0, 10)})`,
    notBefore: new Date(now.getTime() - 300_000),
    notAfter,
    signingAlgorithm: ALG,
    keys: keys as never,
    extensions: [
      new x.BasicConstraintsExtension(true, 0, true),
      new x.KeyUsagesExtension(x.KeyUsageFlags.keyCertSign | x.KeyUsageFlags.cRLSign, true),
      await x.SubjectKeyIdentifierExtension.create(keys.publicKey as never),
    ],
  });
  const keyPem = toPem(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY');
  const certPem = cert.toString('pem').replace(/\r\n/g, '\n').replace(/\n?$/, '\n');
  const tmp = `${keyPath}.pgha-${randomBytes(6).toString('hex')}`;
  await writeFile(tmp, keyPem, { mode: 0o600, flag: 'wx' });
  try {
    await link(tmp, keyPath);
  } catch (err) {
    throw (err as NodeJS.ErrnoException).code === 'EEXIST' ? new PghaError(`${keyPath} appeared meanwhile: not replaced`) : err;
  } finally {
    await unlink(tmp).catch(() => {});
  }
  const certTmp = `${certPath}.pgha-${randomBytes(6).toString('hex')}`;
  await writeFile(certTmp, certPem, { mode: 0o644, flag: 'wx' });
  await rename(certTmp, certPath).catch(async (err) => {
    await rm(certTmp, { force: true });
    throw err;
  });
  return { certPem, cert: new X509Certificate(certPem), key: keys.privateKey, certPath };
}

/** A new CA's files take the place of the current ones (the end of a rotation); the old key is deleted. */
export async function promoteNextCa(inv: Pick<Inventory, 'secretsFile' | 'cluster'>): Promise<void> {
  const p = caPaths(inv);
  await rename(p.nextKey, p.key);
  await rename(p.nextCert, p.cert);
}

/**
 * Signs a host's certificate signing request: the request's signature is checked (the host holds
 * the key), and the certificate names what `names` says, valid for `days` days, usable as a TLS
 * server and client certificate.
 */
export async function issueCertificate(ca: Ca, csrPem: string, names: CertNames, days: number, now = new Date()): Promise<string> {
  const x = await x509();
  let csr: InstanceType<X509Lib['Pkcs10CertificateRequest']>;
  try {
    csr = new x.Pkcs10CertificateRequest(csrPem);
  } catch (err) {
    throw new PghaError(`the host's certificate signing request cannot be read: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!(await csr.verify())) throw new PghaError("the host's certificate signing request has a bad signature");
  const caCert = new x.X509Certificate(ca.certPem);
  const notAfter = new Date(Math.min(now.getTime() + days * 86_400_000, new Date(ca.cert.validTo).getTime()));
  const publicKey = await csr.publicKey.export();
  const cert = await x.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${names.cn}`,
    issuer: caCert.subject,
    notBefore: new Date(now.getTime() - 300_000),
    notAfter,
    signingKey: ca.key,
    publicKey,
    signingAlgorithm: ALG,
    extensions: [
      new x.BasicConstraintsExtension(false, undefined, true),
      new x.KeyUsagesExtension(x.KeyUsageFlags.digitalSignature | x.KeyUsageFlags.keyEncipherment, true),
      new x.ExtendedKeyUsageExtension([x.ExtendedKeyUsage.serverAuth, x.ExtendedKeyUsage.clientAuth]),
      new x.SubjectAlternativeNameExtension([...names.dns.map((value) => ({ type: 'dns' as const, value })), ...names.ip.map((value) => ({ type: 'ip' as const, value }))]),
      await x.SubjectKeyIdentifierExtension.create(publicKey),
      await x.AuthorityKeyIdentifierExtension.create(caCert),
    ],
  });
  return cert.toString('pem').replace(/\r\n/g, '\n').replace(/\n?$/, '\n');
}
