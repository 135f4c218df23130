// Every certificate of a host, as status and verify report it (pure): until when it is valid,
// and what is wrong with it (not the cluster CA's, wrong names, expired, not matching its key, a
// host that does not trust the cluster CA). A certificate within 30 days of its end is a
// problem too: pgha status says degraded.
import type { X509Certificate } from 'node:crypto';
import type { Host, Inventory } from '../../inventory/index.js';
import type { HostTls } from './facts.js';
import { certProblems, daysLeft, parseCert } from './inspect.js';
import { wantedNames } from './names.js';
import { CA_BUNDLE, certFile, keyFile, servicesOf, SERVICE_USER, type TlsService } from './paths.js';
import { splitPems } from './inspect.js';

/** Within this many days of its end a certificate makes the cluster degraded. */
export const EXPIRY_WARNING_DAYS = 30;

export interface CertRow {
  host: string;
  /** The service whose certificate this is, or `ca` for a CA the host trusts. */
  service: TlsService | 'ca';
  path: string;
  subject: string | null;
  not_after: string | null;
  days_left: number | null;
  problems: string[];
}

/**
 * The certificates of `host`: each service's, and each CA of its bundle. `cas`: the cluster CA
 * (and a rotation's new one) from the operator's machine; when none is at hand, the host's own
 * bundle is what a certificate is checked against.
 */
export function certificateRows(inv: Inventory, host: Host, facts: HostTls, cas: X509Certificate[], now: number): CertRow[] {
  const rows: CertRow[] = [];
  const bundle = facts.bundle ? splitPems(facts.bundle).map((p) => parseCert(p)) : [];
  const trusted = cas.length ? cas : bundle.flatMap((b) => ('error' in b ? [] : [b.x509]));
  if (!facts.bundle) {
    rows.push({ host: host.name, service: 'ca', path: CA_BUNDLE, subject: null, not_after: null, days_left: null, problems: ['no CA bundle'] });
  } else {
    const fps = new Set(bundle.flatMap((b) => ('error' in b ? [] : [b.fingerprint])));
    const missing = cas.filter((c) => !fps.has(c.fingerprint256));
    for (const b of bundle) {
      if ('error' in b) {
        rows.push({ host: host.name, service: 'ca', path: CA_BUNDLE, subject: null, not_after: null, days_left: null, problems: [b.error] });
        continue;
      }
      const foreign = cas.length > 0 && !cas.some((c) => c.fingerprint256 === b.fingerprint);
      rows.push({
        host: host.name,
        service: 'ca',
        path: CA_BUNDLE,
        subject: b.x509.subject.replace(/\n/g, ', '),
        not_after: b.notAfter.toISOString(),
        days_left: daysLeft(b.notAfter, now),
        problems: foreign ? [`trusts a CA that is not the cluster's (${b.x509.subject.replace(/\n/g, ', ')})`] : [],
      });
    }
    if (missing.length) rows[rows.length - 1].problems.push(`does not trust the cluster CA (${missing[0].subject.replace(/\n/g, ', ')})`);
  }
  for (const service of servicesOf(host)) {
    const s = facts.services[service];
    const row: CertRow = { host: host.name, service, path: certFile(service), subject: null, not_after: null, days_left: null, problems: [] };
    rows.push(row);
    if (!s?.cert) {
      row.problems.push('no certificate');
      continue;
    }
    const info = parseCert(s.cert.pem);
    if ('error' in info) {
      row.problems.push(`the certificate is ${info.error}`);
      continue;
    }
    row.subject = `CN=${info.names.cn}`;
    row.not_after = info.notAfter.toISOString();
    row.days_left = daysLeft(info.notAfter, now);
    row.problems.push(...certProblems(info, { trusted, wanted: wantedNames(inv, host, service), now, keyPublicPem: s.key?.publicKeyPem ?? undefined }));
    if (!s.key) row.problems.push(`no private key ${keyFile(service)}`);
    else if (s.key.owner !== SERVICE_USER[service] || (s.key.mode & 0o077) !== 0) {
      row.problems.push(`the private key ${keyFile(service)} is ${s.key.owner}:${s.key.group} ${s.key.mode.toString(8).padStart(4, '0')}, expected ${SERVICE_USER[service]} 0600`);
    }
  }
  return rows;
}

/** The row's problem as one phrase naming the host and file, or null; within 30 days of its end counts. */
export function rowProblem(r: CertRow): string | null {
  const what = r.service === 'ca' ? `the CA in ${r.path}` : r.path;
  const problems = [...r.problems];
  if (problems.length === 0 && r.days_left !== null && r.days_left < EXPIRY_WARNING_DAYS) {
    problems.push(`expires in ${r.days_left} day${r.days_left === 1 ? '' : 's'} (${r.not_after!.slice(0, 10)})${r.service === 'ca' ? ': pgha tls renew --ca' : ': pgha tls renew (or apply, within tls.renew_before_days)'}`);
  }
  return problems.length ? `${r.host}: ${what}: ${problems.join('; ')}` : null;
}
