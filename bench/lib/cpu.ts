/** CPU time of another process (Linux /proc): to see what a child, such as the emulator, spent. */
import { readFileSync } from "node:fs";

/** User + system CPU time of process `pid` so far, in ms; null where /proc cannot tell. */
export function processCpuMs(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // fields after the command name, which is in parentheses and may hold spaces
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]);
    // USER_HZ is 100 on every Linux Node supports
    return Number.isFinite(ticks) ? ticks * 10 : null;
  } catch {
    return null;
  }
}
