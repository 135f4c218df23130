// The transport: how pgha reaches a host. Start here:
//   connectAll(targets, opts) -> Map<name, Connection>, then conn.run([...argv]) / conn.readFile / conn.writeFileAtomic.
export type { HostTarget } from './target.js';
export type { Connection, EachCommand, RunOptions, RunResult, FileAttributes } from './connection.js';
export { CommandError, CommandTimedOut, ShellConnection } from './connection.js';
export { SshConnection, connectAll, ConnectAllError, type ConnectOptions } from './ssh.js';
export { LocalConnection, localTarget } from './local.js';
export { Masker, MASK } from './mask.js';
export { type Command, shellQuote, commandText } from './quote.js';
export { fingerprint, parseKnownHosts, verifyHostKey } from './known-hosts.js';
