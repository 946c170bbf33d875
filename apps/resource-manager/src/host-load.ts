import { readFileSync } from 'node:fs';
import { cpus, freemem, totalmem } from 'node:os';

/** This host's CPU use since the previous reading, and memory in use (MemAvailable-based on Linux). */
export class HostLoad {
  private last = HostLoad.cpuTimes();

  private static cpuTimes(): { idle: number; total: number } {
    let idle = 0;
    let total = 0;
    for (const c of cpus()) {
      idle += c.times.idle;
      total += c.times.user + c.times.nice + c.times.sys + c.times.irq + c.times.idle;
    }
    return { idle, total };
  }

  read(): { cpuPercent: number; memoryPercent: number } {
    const now = HostLoad.cpuTimes();
    const total = now.total - this.last.total;
    const idle = now.idle - this.last.idle;
    this.last = now;
    return { cpuPercent: total > 0 ? (100 * (total - idle)) / total : 0, memoryPercent: memoryPercent() };
  }
}

function memoryPercent(): number {
  try {
    const available = /MemAvailable:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'));
    if (available) return 100 * (1 - (Number(available[1]) * 1024) / totalmem());
  } catch {
    // not Linux
  }
  return 100 * (1 - freemem() / totalmem());
}
