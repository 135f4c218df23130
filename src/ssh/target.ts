/** One host to manage, as the inventory resolves it. */
export interface HostTarget {
  /** The inventory's name for the host; every message about it starts with this. */
  name: string;
  address: string;
  port: number;
  user: string;
  privateKeyPath: string;
  /** Escalate privileged commands with `sudo -n` (ignored when user is root). */
  sudo: boolean;
  /** OpenSSH known_hosts file the host keys are checked against. */
  knownHostsPath: string;
  /** strict: an unknown host is refused; accept-new: its key is recorded (a changed key is always refused). */
  hostKeyPolicy: 'strict' | 'accept-new';
  connectTimeoutMs: number;
  /** Default limit for each command; RunOptions.timeoutMs overrides it. */
  commandTimeoutMs: number;
}
