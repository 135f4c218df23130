// status's kept asker: one Python process on a database host (Patroni's Python), run as root and
// held open by the connection keeper between status calls, that answers the questions status would
// otherwise ask with new processes each time: etcd's health and status (curl), whether the host's
// TLS files are still the ones status last read (stat), and its data disk (stat -f). Process starts
// are most of what a status costs a host (about 5 ms each on the lab's machines; the batch of them,
// in the kept root shell, about 40 ms a host). The asker starts nothing.
//
// Each answer is the one the shell command gives (etcdStateCommand's format; TLS_FACTS's "@@same";
// dataDiskArgv's "SIZE BLOCKS AVAILABLE"), so the same parsers read it. What it cannot answer as the
// shell would (a TLS file missing or changed, a statfs that fails) it leaves to the shell: status
// asks that in the batch, as it does where there is no asker (no Python, or no kept connection).
//
// It speaks psql's framing, so the keeper's kept psql carries it: the question is one line of JSON;
// after `\echo MARK` it writes its answer (one line of JSON) and MARK on stdout, after `\warn MARK`
// MARK on stderr. The etcd members are asked in parallel, each question with curl's limits (2 s),
// as curl asked them: the TLS files read again and a new connection to each member every time, so
// a certificate changed on either side (a renewal, a CA rotation, a forged one) shows at once.
import type { Inventory } from '../../inventory/index.js';
import type { RunResult } from '../../ssh/index.js';
import { etcdEndpoints } from '../../components/etcd/endpoints.js';
import { POSTGRES_HOME } from '../../components/patroni/paths.js';
import { CA_BUNDLE, certFile, keyFile, tlsOn } from '../../components/tls/paths.js';

export const ASKER = String.raw`import concurrent.futures, grp, http.client, json, os, pwd, ssl, sys, time
from urllib.parse import urlsplit
ca, cert, key = sys.argv[1:4]
eps = sys.argv[4:]
pool = concurrent.futures.ThreadPoolExecutor(max(1, len(eps)))

def connect(u, ctx):
    if u.scheme != 'https':
        return http.client.HTTPConnection(u.hostname, u.port, timeout=2)
    return http.client.HTTPSConnection(u.hostname, u.port, timeout=2, context=ctx)

def why(u, e):
    # in curl's words, as status showed them when curl asked
    if isinstance(e, ssl.SSLCertVerificationError):
        return 'SSL certificate problem: %s' % (e.verify_message or e.reason)
    if isinstance(e, ssl.SSLError):
        return 'SSL error: %s' % (e.reason or e)
    if isinstance(e, TimeoutError):
        return 'Failed to connect to %s port %s: Timeout was reached' % (u.hostname, u.port)
    if isinstance(e, OSError) and e.strerror:
        return 'Failed to connect to %s port %s: %s' % (u.hostname, u.port, e.strerror)
    return str(e) or type(e).__name__

def member(ep, ctx):
    u = urlsplit(ep)
    out = []
    c = None
    try:
        c = connect(u, ctx)
        for path, post in (('/health', False), ('/v3/maintenance/status', True)):
            c.request('POST' if post else 'GET', path, body='{}' if post else None)
            r = c.getresponse()
            out.append((r.status, r.read().decode('utf-8', 'replace'), 0, ''))
    except Exception as e:
        failed = (0, '', 28 if isinstance(e, TimeoutError) else 7, why(u, e))
        out += [failed] * (2 - len(out))
    finally:
        if c is not None:
            c.close()
    return out

def etcd():
    ctx = None
    if ca:
        try:
            ctx = ssl.create_default_context(cafile=ca)
            ctx.load_cert_chain(cert, key)
        except (OSError, ValueError) as e:
            return ''.join('\n@@etcd %d 000 58 could not load the client certificate: %s\n' % (i, e) for i in range(2 * len(eps)))
    text = []
    for i, answers in enumerate(pool.map(lambda ep: member(ep, ctx), eps)):
        for j, (code, body, exit, error) in enumerate(answers):
            text.append('%s\n@@etcd %d %03d %d %s\n' % (body, 2 * i + j, code, exit, error))
    return ''.join(text)

def owner(get, n):
    try:
        return get(n)[0]
    except KeyError:
        return 'UNKNOWN'

def identity(files):
    # stat -c '%n %d:%i %z %s %U %G %a' of each file (TLS_FACTS's first line); None when one is missing
    lines = []
    for f in files:
        try:
            s = os.lstat(f)
        except OSError:
            return None
        t = time.localtime(s.st_ctime_ns // 10**9)
        lines.append('%s %d:%d %s.%09d %s %d %s %s %o' % (f, s.st_dev, s.st_ino, time.strftime('%Y-%m-%d %H:%M:%S', t), s.st_ctime_ns % 10**9,
                     time.strftime('%z', t), s.st_size, owner(pwd.getpwuid, s.st_uid), owner(grp.getgrgid, s.st_gid), s.st_mode & 0o7777))
    return '\n'.join(lines)

def disk(home, major):
    # dataDiskArgv's pick and its stat -f -c '%S %b %a'
    d = home
    if major:
        p = os.path.join(home, str(major), 'main')
        if os.path.isdir(p):
            d = p
    else:
        v = 0
        for n in os.listdir(home):
            p = os.path.join(home, n, 'main')
            if n.isdigit() and os.path.isdir(p) and int(n) > v:
                v, d = int(n), p
    s = os.statvfs(d)
    return '%d %d %d' % (s.f_frsize, s.f_blocks, s.f_bavail)

question = {}
for line in sys.stdin:
    line = line.rstrip('\n')
    if line.startswith('{'):
        question = json.loads(line)
    elif line.startswith('\\echo '):
        a = {}
        if question.get('etcd'):
            a['etcd'] = etcd()
        if question.get('tls'):
            a['tls'] = identity(question['tls']['files']) == question['tls']['known']
        if question.get('disk'):
            try:
                a['disk'] = disk(question['disk']['home'], question['disk'].get('major'))
            except OSError as e:
                a['disk_error'] = str(e)
        sys.stdout.write(json.dumps(a) + '\n' + line[6:] + '\n')
        sys.stdout.flush()
    elif line.startswith('\\warn '):
        sys.stderr.write(line[6:] + '\n')
        sys.stderr.flush()
`;

/** The asker's command line for this inventory: it asks etcd as etcdStateCommand does (with TLS, with the member's certificate). */
export function statusAskerCommand(inv: Inventory): string[] {
  const tls = tlsOn(inv) ? [CA_BUNDLE, certFile('etcd'), keyFile('etcd')] : ['', '', ''];
  return ['python3', '-c', ASKER, ...tls, ...etcdEndpoints(inv)];
}

export interface AskerQuestion {
  /** etcd's health and status of every member. */
  etcd?: boolean;
  /** Are these files (tlsIdentityFiles) still what `known` (TLS_FACTS's identity) says? */
  tls?: { files: string[]; known: string };
  /** The data disk (dataDiskArgv's pick). */
  disk?: { home: string; major?: number };
}

export const diskQuestion = (inv: Inventory): AskerQuestion['disk'] => ({ home: POSTGRES_HOME, ...(inv.cluster.postgres_version ? { major: Number(inv.cluster.postgres_version) } : {}) });

/**
 * The asker's answer as the shell commands' results: etcd's output, "@@same" for unchanged TLS
 * files, the data disk's statfs; a part it could not answer (a changed or missing TLS file, a failed
 * statfs) is absent, for the batch to ask.
 */
export function readAskerAnswer(stdout: string): { etcd?: RunResult; tls?: RunResult; disk?: RunResult } {
  let a: { etcd?: string; tls?: boolean; disk?: string; disk_error?: string };
  try {
    a = JSON.parse(stdout.trim().split('\n').pop() ?? '') as typeof a;
  } catch {
    return {}; // not the asker's answer: the batch asks it all
  }
  const ok = (text: string): RunResult => ({ code: 0, stdout: text, stderr: '' });
  return {
    ...(typeof a.etcd === 'string' ? { etcd: ok(a.etcd) } : {}),
    ...(a.tls === true ? { tls: ok('@@same\n') } : {}),
    ...(typeof a.disk === 'string' ? { disk: ok(a.disk) } : {}),
  };
}
