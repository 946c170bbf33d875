import { Injectable } from '@nestjs/common';

/**
 * In-process news about runs, from the services that see it to the reconciler: a run whose last file may just
 * have ended is finalized now, not on the next tick (the tick stays as the backstop).
 */
@Injectable()
export class RunSignals {
  private readonly listeners = new Set<(runId: string, finals?: number) => void>();

  onMaybeDone(listener: (runId: string, finals?: number) => void): void {
    this.listeners.add(listener);
  }

  /** `finals`: how many of its tasks have recorded their last attempt, when the news says (see RUN_FINALS_FIELD). */
  maybeDone(runId: string, finals?: number): void {
    for (const l of this.listeners) l(runId, finals);
  }
}
