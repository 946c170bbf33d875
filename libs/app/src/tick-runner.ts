/**
 * A periodic pass that never overlaps itself: the resource manager's tick, the runs reconciler's pass, the
 * analyzer's analysis. A pass that throws is reported to `onError` and the next one runs as usual.
 *
 * `run()` while a pass is in progress either joins it (`rerun: false`: the caller only wants the work done
 * recently, as a timer does) or schedules one more pass right after it (`rerun: true`: the caller changed
 * something the current pass may have read too early, as a pin does), coalescing any number of such calls
 * into one. After `stop()`, nothing starts (a queued rerun included), and `stop()` resolves once the pass in
 * progress has ended.
 */
export class TickRunner {
  private current: Promise<void> | undefined;
  private queued: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly pass: () => Promise<void>,
    private readonly onError: (err: Error) => void,
    private readonly opts: { rerun: boolean },
  ) {}

  /** Resolves when a pass that saw this call's effects (see the class) has finished; never rejects. */
  run(): Promise<void> {
    if (this.stopped) return this.current ?? Promise.resolve();
    if (!this.current) {
      this.current = this.pass()
        .catch((err: unknown) => this.onError(err instanceof Error ? err : new Error(String(err))))
        .finally(() => (this.current = undefined));
      return this.current;
    }
    if (!this.opts.rerun) return this.current;
    this.queued ??= this.current.then(() => {
      this.queued = undefined;
      return this.run();
    });
    return this.queued;
  }

  /** Starts no more passes; resolves when the one in progress has ended. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.current;
  }
}
