// What the keeper's long-lived processes on a host share (root-shell.ts, kept-psql.ts): a pipe to
// the process, its output gathered as it comes, and a wait for an answer in it with a time limit.

/** The pipe to the process: what a channel (or a local child process, in tests) provides. */
export interface ProcessPipe {
  write(text: string): void;
  onStdout(listener: (chunk: Buffer) => void): void;
  /** Where the caller reads stderr apart (the root shell frames it into stdout itself). */
  onStderr?(listener: (chunk: Buffer) => void): void;
  onClose(listener: () => void): void;
  close(): void;
}

export abstract class KeptProcess {
  protected out: Buffer = Buffer.alloc(0);
  protected err: Buffer = Buffer.alloc(0);
  private ended = false;
  private waiter: (() => void) | undefined;

  protected constructor(protected readonly pipe: ProcessPipe) {
    const more = (which: 'out' | 'err') => (chunk: Buffer) => {
      this[which] = Buffer.concat([this[which], chunk]);
      this.waiter?.();
    };
    pipe.onStdout(more('out'));
    pipe.onStderr?.(more('err'));
    pipe.onClose(() => {
      this.ended = true;
      this.waiter?.();
    });
  }

  get alive(): boolean {
    return !this.ended;
  }

  /** Waits until `read` finds its answer in the output so far: the answer, or 'ended' (the process ended first) or 'late' (after ms). */
  protected until<T>(read: () => T | undefined, ms: number): Promise<T | 'ended' | 'late'> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => finish('late'), ms);
      const finish = (v: T | 'ended' | 'late') => {
        clearTimeout(timer);
        this.waiter = undefined;
        resolve(v);
      };
      this.waiter = () => {
        const found = read();
        if (found !== undefined) finish(found);
        else if (this.ended) finish('ended');
      };
      this.waiter();
    });
  }

  close(): void {
    this.ended = true;
    try {
      this.pipe.close();
    } catch {
      // already closed
    }
  }
}
