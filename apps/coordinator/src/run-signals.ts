import { Injectable } from '@nestjs/common';

/**
 * In-process news about runs, from the services that see it to the reconciler: a run whose last file may just
 * have ended is finalized now, not on the next tick (the tick stays as the backstop).
 */
@Injectable()
export class RunSignals {
  private readonly listeners = new Set<(runId: string) => void>();

  onMaybeDone(listener: (runId: string) => void): void {
    this.listeners.add(listener);
  }

  maybeDone(runId: string): void {
    for (const l of this.listeners) l(runId);
  }
}
