/** One host to manage, as the inventory (and ~/.ssh/config) resolve it. */
export interface HostTarget {
  /** The inventory's name for the host; every message about it starts with this. */
  name: string;
  /** Where SSH connects (the inventory's address, or ~/.ssh/config's HostName); host keys are checked for it. */
  address: string;
  port: number;
  user: string;
  /** The key file named for this host (inventory or ~/.ssh/config); '' when none is named. */
  privateKeyPath: string;
  /** With no key file named: the files tried after the agent (~/.ssh/id_ed25519, ...). */
  defaultKeyPaths?: string[];
  /** The ssh-agent's socket (SSH_AUTH_SOCK), if any. */
  agentSocket?: string;
  /** Jump hosts (ProxyJump), in order; each is verified against the same known_hosts. */
  jump?: JumpHop[];
  /** Escalate privileged commands with `sudo -n` (ignored when user is root). */
  sudo: boolean;
  /** OpenSSH known_hosts file the host keys are checked against. */
  knownHostsPath: string;
  /** strict: an unknown host is refused; accept-new: its key is recorded (a changed key is always refused). */
  hostKeyPolicy: 'strict' | 'accept-new';
  connectTimeoutMs: number;
  /** Default limit for each command; RunOptions.timeoutMs overrides it. */
  commandTimeoutMs: number;
  /** How long a kept connection (keeper.ts) may stay idle; 0 or unset: connections are not kept. */
  persistMs?: number;
}

/** One jump host: `user@address:port`. */
export interface JumpHop {
  user: string;
  address: string;
  port: number;
}
