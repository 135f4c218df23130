// Every subcommand is registered here, one line each; the command itself lives in its own module.
import type { Command } from 'commander';

export function registerCommands(_program: Command): void {
  // registered by each command module as it lands
}
