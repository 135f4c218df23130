// HTTP GET over a stream the caller opens (an SSH channel to an address as the host itself sees
// it, ssh -L's way): what the connection keeper (keeper.ts) uses to ask Patroni's REST API and
// HAProxy's stats from a host without starting curl there (curl's start, OpenSSL and the CA
// bundle cost a database host about 35 ms of CPU per status call). HTTPS is verified against the
// cluster CA's certificates the caller gives, and the server's certificate must name the address.
import { request } from 'node:http';
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect, createSecureContext, type SecureContext } from 'node:tls';
import { PghaError } from '../errors.js';

export interface ForwardedAnswer {
  status: number;
  body: string;
}

/** One TLS context per CA set: building one (parsing the PEMs) cost more than the request. */
const contexts = new Map<string, SecureContext>();
function contextFor(ca: string[]): SecureContext {
  const key = ca.join('\n');
  let c = contexts.get(key);
  if (!c) {
    if (contexts.size >= 8) contexts.clear(); // CA sets change only on a rotation
    c = createSecureContext({ ca });
    contexts.set(key, c);
  }
  return c;
}

/**
 * The last TLS session of each server (host:port and CA set): the next request resumes it, which
 * spares both sides the certificate work of a full handshake. A resumed session carries the
 * certificate verified when it began (checked against the address again on every request); the
 * chain is verified anew once the server declines to resume (a restart, a new certificate
 * context) or the CA set changes. Status reads the certificate files themselves as well.
 */
const sessions = new Map<string, Buffer>();

/** A GET of `url` over the stream `open` gives for its host and port; rejects with what went wrong (no answer within timeoutMs too). */
export async function forwardedGet(
  open: (host: string, port: number) => Promise<Duplex>,
  url: string,
  opts: { ca?: string[]; timeoutMs: number },
): Promise<ForwardedAnswer> {
  const u = new URL(url);
  const https = u.protocol === 'https:';
  if (!https && u.protocol !== 'http:') throw new PghaError(`not an http(s) URL: ${url}`);
  if (https && !opts.ca?.length) throw new PghaError('no CA certificate to verify the server with');
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = Number(u.port || (https ? 443 : 80));
  let stream: Duplex | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<ForwardedAnswer>((resolve, reject) => {
      timer = setTimeout(() => reject(new PghaError(`no answer within ${opts.timeoutMs / 1000} s`)), opts.timeoutMs);
      open(host, port).then((raw) => {
        stream = raw;
        let socket: Duplex = raw;
        if (https) {
          const key = `${host} ${port} ${opts.ca!.join('')}`;
          const tls = tlsConnect({ socket: raw, secureContext: contextFor(opts.ca!), host, session: sessions.get(key), ...(isIP(host) ? {} : { servername: host }) });
          tls.on('session', (session: Buffer) => {
            if (sessions.size >= 256) sessions.clear();
            sessions.set(key, session);
          });
          socket = tls;
        }
        socket.on('error', reject);
        const req = request({ method: 'GET', host, port, path: `${u.pathname}${u.search}`, headers: { host: u.host, connection: 'close' }, createConnection: () => socket as never }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end();
      }, reject);
    });
  } finally {
    clearTimeout(timer);
    stream?.destroy();
  }
}
