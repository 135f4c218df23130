// `pgha replace HOST`: a machine rebuilt under the same name and address with an empty disk comes
// back as a member. Its new host key is shown (SHA256 fingerprint) and confirmed, known_hosts
// updated; then the inventory is applied with that host marked as rebuilt (its old etcd member
// removed and a new one added; PostgreSQL and HAProxy join; a repository host gets a new stanza
// and a full backup). The other hosts' data is never touched.
import { createReporter } from '../../engine/index.js';
import { HostError, PghaError } from '../../errors.js';
import { converge } from '../../cluster/converge.js';
import type { CommandContext } from '../context.js';
import { hostTarget, secretMasker } from '../../session/session.js';
import { fingerprint, keyTypeOf, readKnownHosts, replaceKnownHost, verifyHostKey } from '../../ssh/known-hosts.js';
import { fetchHostKey } from '../../ssh/host-key.js';

export interface ReplaceOptions {
  host: string;
  yes?: boolean;
  verbose?: boolean;
}

export async function replace(ctx: CommandContext, opts: ReplaceOptions): Promise<number> {
  const inv = await ctx.inventory();
  const host = inv.host(opts.host);
  const confirmation = {
    yes: opts.yes,
    noTerminal: `replace ${host.name} records its new host key and rebuilds it as a member, and needs a confirmation, but there is no terminal to ask on: check the fingerprint, then add --yes`,
  };
  ctx.needsConfirmation(confirmation); // refused before any host is contacted
  // Where SSH connects (~/.ssh/config's HostName and Port apply, as for every connection).
  const { address, port } = hostTarget(host);
  const { knownHosts } = host.ssh;
  let key: Buffer;
  try {
    key = await fetchHostKey(address, port, { timeoutMs: host.ssh.connectTimeout * 1000 });
  } catch (err) {
    throw new HostError(host.name, `cannot read its host key at ${address}:${port}: ${err instanceof Error ? err.message : String(err)} (is the rebuilt machine up, with sshd running?)`);
  }
  const shown = `${keyTypeOf(key)} key ${fingerprint(key)}`;
  const verdict = verifyHostKey(readKnownHosts(knownHosts), address, port, key);
  if (verdict.status === 'revoked') throw new PghaError(`${host.name}: its host key (${shown}) is marked @revoked in ${knownHosts} line ${verdict.entry.line}: refusing it`);
  const what = `Rebuild ${host.name} as a member of cluster ${inv.cluster.name} (its etcd member re-created if it is an etcd host; the other hosts' data is not touched)`;
  if (verdict.status === 'match') {
    ctx.out(`${host.name} (${address}:${port}) offers the ${shown}, the key known_hosts has already\n`);
    await ctx.confirm(`${what}?`, confirmation);
  } else {
    ctx.out(`${host.name} (${address}:${port}) now offers the ${shown}\n`);
    if (verdict.status === 'changed') {
      ctx.out(`${knownHosts} has for it:\n${verdict.entries.map((e) => `  line ${e.line}: ${e.keyType} key ${fingerprint(e.key)}\n`).join('')}`);
    } else {
      ctx.out(`${knownHosts} has no key for it\n`);
    }
    ctx.out(`Compare with the machine's own: ssh-keygen -lf /etc/ssh/ssh_host_${keyTypeOf(key).replace(/^ssh-|-sha2-nistp\d+$/g, '')}_key.pub on its console\n`);
    await ctx.confirm(`Is ${fingerprint(key)} ${host.name}'s new host key? ${what}`, confirmation);
    const dropped = replaceKnownHost(knownHosts, address, port, key);
    ctx.out(`known_hosts: ${host.name}'s new key recorded${dropped.length ? ` (${dropped.length} old line${dropped.length === 1 ? '' : 's'} removed)` : ''}\n`);
  }
  const reporter = await createReporter({ verbose: opts.verbose, masker: secretMasker(inv), log: ctx.log });
  const session = await ctx.session({ reporter });
  return (await converge(session, reporter, ctx.out, { replace: host.name, inventoryFile: ctx.inventoryFile })).code;
}
