// Expected failures carry an exit code and a message meant for the operator.
// Anything else reaching the CLI's error boundary is a bug and prints its stack.

export const EXIT = {
  ok: 0,
  failed: 1, // an operation ran and failed (a host step, a verify check)
  badInput: 2, // bad inventory, bad flags: nothing was changed
  bug: 70, // unexpected error (EX_SOFTWARE)
  interrupted: 130,
} as const;

export class PghaError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.failed,
    /** Extra lines printed after the message, one per line (e.g. every inventory problem). */
    readonly lines: string[] = [],
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** Bad input from the operator (flags, inventory, secrets file). Exit 2, nothing changed. */
export class InputError extends PghaError {
  constructor(message: string, lines: string[] = []) {
    super(message, EXIT.badInput, lines);
  }
}

/** A problem on one named host (unreachable, refused host key, failed command). */
export class HostError extends PghaError {
  constructor(
    readonly host: string,
    message: string,
    exitCode: number = EXIT.failed,
  ) {
    super(`${host}: ${message}`, exitCode);
  }
}
