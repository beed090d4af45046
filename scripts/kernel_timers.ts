/**
 * Timers around every entry of the active kernel table, for the profiling scripts: wall and process
 * CPU time (all threads) per kernel. Off until `timing.on = true`, since reading the CPU clock around
 * hundreds of calls costs time of its own.
 */
import { kernels } from '../src/backend/backend.js';

export interface KernelTime {
  ms: number;
  cpuMs: number;
  calls: number;
}

export function installKernelTimers(): { stats: Map<string, KernelTime>; timing: { on: boolean } } {
  const stats = new Map<string, KernelTime>();
  const timing = { on: false };
  const cpuNow = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  const table = kernels() as unknown as Record<string, (...args: unknown[]) => unknown>;
  for (const name of Object.keys(table)) {
    const fn = table[name];
    table[name] = (...args: unknown[]) => {
      if (!timing.on) return fn(...args);
      const t0 = performance.now();
      const c0 = cpuNow();
      try {
        return fn(...args);
      } finally {
        const s = stats.get(name) ?? { ms: 0, cpuMs: 0, calls: 0 };
        s.cpuMs += cpuNow() - c0;
        s.ms += performance.now() - t0;
        s.calls++;
        stats.set(name, s);
      }
    };
  }
  return { stats, timing };
}
