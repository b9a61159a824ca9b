// A process's own peak RSS in MB. On Linux, getrusage's ru_maxrss (process.resourceUsage().maxRSS) keeps
// the high-water mark of the address space that exec replaced, i.e. the forking parent's RSS: a child of
// a 400 MB test runner reports at least 400 MB. /proc/self/status's VmHWM is the mark of this process's
// own memory; other systems fall back to maxRSS.
import { readFileSync } from 'node:fs';

export function peakRssMB(): number {
  try {
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (match) return Math.round(Number(match[1]) / 1024);
  } catch {
    // Not Linux.
  }
  return Math.round(process.resourceUsage().maxRSS / 1024);
}
