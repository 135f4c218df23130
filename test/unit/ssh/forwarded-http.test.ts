// HTTP GET over a stream the caller opens (src/ssh/forwarded-http.ts), as the connection keeper
// asks a host's Patroni and HAProxy over its SSH connection: the stream asked for is the one used
// (never a connection of this machine's own), HTTPS is verified against the CA given and the
// address the URL names, and a server that does not answer is given up in time.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttp, type Server } from 'node:http';
import { createServer as createHttps } from 'node:https';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { forwardedGet } from '../../../src/ssh/forwarded-http.js';

const dir = mkdtempSync(join(tmpdir(), 'pgha-unit-fwd-'));
const pem = (name: string) => readFileSync(join(dir, name), 'utf8');
const servers: Server[] = [];
const listen = (s: Server) => new Promise<number>((res) => s.listen(0, '127.0.0.1', () => res((s.address() as AddressInfo).port)));
let plain: number;
let tls: number;
let silent: number;
const seen: { host?: string; url?: string } = {};

/** A CA and a server certificate for IP 127.0.0.1 it signed; another CA that signed nothing here. */
function makeCerts() {
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  for (const ca of ['ca', 'other']) ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${ca}.key`, '-out', `${ca}.crt`, '-days', '2', '-subj', `/CN=${ca}`);
  ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=node1');
  writeFileSync(join(dir, 'ext'), 'subjectAltName=IP:127.0.0.1\n');
  ssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'ext');
}

before(async () => {
  makeCerts();
  const answer = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
    seen.host = req.headers.host;
    seen.url = req.url;
    res.writeHead(503, { 'content-type': 'application/json' });
    res.end('{"state":"running"}');
  };
  const a = createHttp(answer);
  const b = createHttps({ key: pem('server.key'), cert: pem('server.crt') }, answer);
  const c = createHttp(() => {}); // never answers
  servers.push(a, b, c);
  [plain, tls, silent] = await Promise.all([a, b, c].map(listen));
});
after(() => {
  for (const s of servers) s.closeAllConnections?.(), s.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Streams to this machine's `port` whatever the URL names; remembers what was asked for. */
function opener(port: number, asked: string[]) {
  return async (host: string, p: number) => {
    asked.push(`${host}:${p}`);
    const s = connect(port, '127.0.0.1');
    await new Promise((res, rej) => s.once('connect', res).once('error', rej));
    return s;
  };
}

describe('HTTP over a stream of the caller', () => {
  test('the stream asked for carries the request, with the URL own host, path and query', async () => {
    const asked: string[] = [];
    const r = await forwardedGet(opener(plain, asked), 'http://10.255.255.1:7000/;csv?x=1', { timeoutMs: 3000 });
    assert.deepEqual(r, { status: 503, body: '{"state":"running"}' });
    assert.deepEqual(asked, ['10.255.255.1:7000']);
    assert.deepEqual(seen, { host: '10.255.255.1:7000', url: '/;csv?x=1' });
  });

  test('HTTPS: verified against the CA given and the address in the URL', async () => {
    const ok = await forwardedGet(opener(tls, []), 'https://127.0.0.1:8008/patroni', { ca: [pem('ca.crt')], timeoutMs: 3000 });
    assert.equal(ok.status, 503);
    await assert.rejects(forwardedGet(opener(tls, []), 'https://127.0.0.1:8008/patroni', { ca: [pem('other.crt')], timeoutMs: 3000 }), /self[- ]signed|unable to (get|verify)/i);
    await assert.rejects(forwardedGet(opener(tls, []), 'https://127.0.0.2:8008/patroni', { ca: [pem('ca.crt')], timeoutMs: 3000 }), /IP: 127\.0\.0\.2 is not in the cert's list/);
    await assert.rejects(forwardedGet(opener(tls, []), 'https://127.0.0.1:8008/patroni', { timeoutMs: 3000 }), /no CA certificate/);
  });

  test('a server that never answers is given up at the time limit; a refused stream is the error', async () => {
    const t0 = Date.now();
    await assert.rejects(forwardedGet(opener(silent, []), 'http://127.0.0.1:1/', { timeoutMs: 300 }), /no answer within 0.3 s/);
    assert.ok(Date.now() - t0 < 2000);
    await assert.rejects(
      forwardedGet(async () => { throw new Error('(SSH) Channel open failure: Connection refused'); }, 'http://127.0.0.1:8008/', { timeoutMs: 3000 }),
      /Connection refused/,
    );
  });
});
