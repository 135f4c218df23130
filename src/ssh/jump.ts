// Jump host specifications as ssh's ProxyJump writes them: `[user@]host[:port]`, several hops
// comma-separated (the first is connected first), an IPv6 address in brackets, or `none`.
// Pure (the inventory's schema checks `ssh.jump` with it).

/** One hop as written; what is not written comes from ~/.ssh/config or the defaults. */
export interface JumpSpec {
  user?: string;
  host: string;
  port?: number;
}

const USER_RE = /^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/;
const HOST_RE = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/;

/** The hops, 'none', or what is wrong with the text. */
export function parseJump(text: string): JumpSpec[] | 'none' | { problem: string } {
  const t = text.trim();
  if (t === 'none') return 'none';
  const expected = 'expected [user@]host[:port], several comma-separated, or none';
  if (t === '') return { problem: `empty, ${expected}` };
  const hops: JumpSpec[] = [];
  const several = t.includes(',');
  // Validate prefixes the whole value ("got ..."): a single hop is not repeated.
  for (const raw of t.split(',')) {
    const part = raw.trim().replace(/^ssh:\/\//, '');
    const m = /^(?:([^@\s]+)@)?(\[[0-9A-Fa-f:.]+\]|[^:@\s[\]]+)(?::(\d{1,5}))?$/.exec(part);
    if (!m) return { problem: several ? `"${raw.trim()}" is not a jump host, ${expected}` : `not a jump host, ${expected}` };
    const [, user, hostText, portText] = m;
    const host = hostText.startsWith('[') ? hostText.slice(1, -1) : hostText;
    if (user !== undefined && !USER_RE.test(user)) return { problem: `user "${user}" is not a user name, ${expected}` };
    if (!hostText.startsWith('[') && !HOST_RE.test(host)) return { problem: `host "${host}" is not a host name or address, ${expected}` };
    if (hostText.startsWith('[') && !host.includes(':')) return { problem: `host "${hostText}" is not an IPv6 address, ${expected}` };
    const port = portText === undefined ? undefined : Number(portText);
    if (port !== undefined && (port < 1 || port > 65535)) return { problem: `port ${portText} is not 1-65535, ${expected}` };
    hops.push({ ...(user ? { user } : {}), host, ...(port ? { port } : {}) });
  }
  return hops;
}
