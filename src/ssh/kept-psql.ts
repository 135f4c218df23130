// A kept psql: one psql process on a host, held open by the connection keeper (keeper.ts), that
// answers the SQL status asks each time. A psql run afresh costs a database host about 50 ms of
// CPU (the psql process, a new backend and its login), the query itself well under 1 ms. Queries
// go in on stdin, one at a time; after each, `\echo` and `\warn` write a mark of its own to stdout
// and stderr, so its answer is what came before them. psql ends when its server goes away (a
// restart, a switchover): the keeper then starts another.
import { randomBytes } from 'node:crypto';
import type { RawResult } from './connection.js';
import { CommandTimeout } from './connection.js';
import { PghaError } from '../errors.js';
import { KeptProcess, type ProcessPipe } from './kept-process.js';

/** An error psql or the server reported for the query (psql goes on to the next one: no ON_ERROR_STOP). */
const FAILED = /^(psql:[^\n]*?)?(ERROR|FATAL|PANIC):/m;

export class KeptPsql extends KeptProcess {
  private queue: Promise<unknown> = Promise.resolve();
  /** It has answered a query: a psql that ends under the next one is one whose server went away since. */
  answered = false;

  constructor(pipe: ProcessPipe) {
    super(pipe);
  }

  /**
   * The query's answer as psql gives it (stdout, stderr; exit 1 when it reports an error), one
   * query at a time. Throws CommandTimeout past timeoutMs (psql is then given up), an Error when
   * psql ended before it answered (its stderr says why).
   */
  query(sql: string, timeoutMs: number): Promise<RawResult> {
    const next = this.queue.then(() => this.ask(sql, timeoutMs));
    this.queue = next.catch(() => {});
    return next;
  }

  private async ask(sql: string, timeoutMs: number): Promise<RawResult> {
    if (!this.alive) throw new PghaError(`psql ended: ${this.err.toString('utf8').trim() || 'no reason given'}`);
    const mark = `pgha-${randomBytes(6).toString('hex')}`;
    // The lone ";" ends a query its text left open; psql sends nothing for an empty one.
    this.pipe.write(`${sql}\n;\n\\echo ${mark}\n\\warn ${mark}\n`);
    const line = `${mark}\n`;
    const got = await this.until(() => (this.out.includes(line) && this.err.includes(line) ? 'ok' : undefined), timeoutMs > 0 ? timeoutMs : 2 ** 31 - 1);
    if (got === 'late') {
      this.close();
      throw new CommandTimeout();
    }
    if (got === 'ended') throw new PghaError(`psql ended: ${this.err.toString('utf8').trim() || 'no reason given'}`);
    const take = (b: Buffer): [string, Buffer] => {
      const at = b.indexOf(line);
      return [b.subarray(0, at).toString('utf8'), b.subarray(at + line.length)];
    };
    let stdout: string;
    let stderr: string;
    [stdout, this.out] = take(this.out);
    [stderr, this.err] = take(this.err);
    this.answered = true;
    return { code: FAILED.test(stderr) ? 1 : 0, signal: null, stdout, stderr };
  }
}
