import { readdirSync, readFileSync } from 'node:fs';

/** What the benches read of this machine's processes and CPUs from /proc (Linux; USER_HZ = 100). */

/** CPU milliseconds (user + system) a process has used so far; undefined when it is not (or no longer) there. */
export function processCpuMs(pid: number | string): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th (clock ticks).
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return undefined;
  }
}

/** CPU milliseconds used so far by the PostgreSQL backends serving one database (found by their process titles). */
export function backendCpuMs(database: string): number {
  let ms = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(pid)) continue;
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(database)) continue;
    } catch {
      continue; // the process ended meanwhile
    }
    ms += processCpuMs(pid) ?? 0;
  }
  return ms;
}

/** Busy and total jiffies of the whole machine (every core, every process). */
export function machineCpu(): { busy: number; total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  const total = fields.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/** A process's resident and peak resident memory in bytes (VmRSS, VmHWM); undefined when it is not (or no longer) there. */
export function processMemory(pid: number): { rss: number; peak: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN) * 1024;
    return { rss: kb('VmRSS'), peak: kb('VmHWM') };
  } catch {
    return undefined;
  }
}
