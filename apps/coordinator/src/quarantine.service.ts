import { Injectable } from '@nestjs/common';
import { notFound } from '@fleet/app';
import type { Client } from '@fleet/config';
import { type FlakyRecord, type QuarantineRecord, RunsRepository } from './runs.repository.js';

/** Flakiness across runs, and the quarantine: tests whose failures no longer fail a run. */
@Injectable()
export class QuarantineService {
  constructor(private readonly runs: RunsRepository) {}

  async flaky(limit: number): Promise<Array<FlakyRecord & { test: string; rate: number; quarantined: boolean }>> {
    const [all, quarantine] = await Promise.all([this.runs.flakiness(), this.runs.quarantined()]);
    return [...all]
      .filter(([, r]) => r.flaky > 0)
      .map(([test, r]) => ({ test, ...r, rate: r.flaky / r.runs, quarantined: quarantine.has(test) }))
      .sort((a, b) => b.rate - a.rate || b.flaky - a.flaky || a.test.localeCompare(b.test))
      .slice(0, limit);
  }

  async quarantineList(): Promise<Array<QuarantineRecord & { test: string }>> {
    return [...(await this.runs.quarantined())].map(([test, r]) => ({ test, ...r }));
  }

  async quarantine(test: string, reason: string, client: Client): Promise<QuarantineRecord & { test: string }> {
    const record = { by: client.name, at: Date.now(), reason };
    await this.runs.quarantine(test, record);
    return { test, ...record };
  }

  async release(test: string): Promise<void> {
    if (!(await this.runs.release(test))) throw notFound('test', `"${test}" is not quarantined`);
  }
}
