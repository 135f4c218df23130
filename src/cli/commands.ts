// Every subcommand is registered here, one line each; the command itself lives in its own module.
import type { Command } from 'commander';
import { registerInit } from './commands/init.js';

export function registerCommands(program: Command): void {
  registerInit(program);
  // registered by each command module as it lands
}
