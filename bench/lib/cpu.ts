/** CPU time of another process (Linux /proc): to see what a child, such as the emulator, spent. */
import { execFileSync } from "node:child_process";
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

/** Ticks of the whole machine so far, all cores together (Linux /proc/stat): busy and in all;
 *  null where /proc cannot tell. */
export function machineTicks(): { busy: number; all: number } | null {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0] ?? "";
    // cpu user nice system idle iowait irq softirq steal (guest time is inside user)
    const f = line.trim().split(/\s+/).slice(1, 9).map(Number);
    if (f.length < 8 || f.some((x) => !Number.isFinite(x))) return null;
    const all = f.reduce((a, b) => a + b, 0);
    return { busy: all - (f[3] ?? 0) - (f[4] ?? 0), all };
  } catch {
    return null;
  }
}

/** The share of the machine's CPU (every core) that was busy between two machineTicks readings;
 *  null where unknown. */
export function busyShare(
  from: ReturnType<typeof machineTicks>,
  to: ReturnType<typeof machineTicks>,
): number | null {
  if (!from || !to || to.all <= from.all) return null;
  return (to.busy - from.busy) / (to.all - from.all);
}

/** Restricts every thread of process `pid` (and the threads and children it starts later) to the
 *  CPUs `cpus` ("0", "1-3"), with util-linux's taskset. */
export function pinProcess(pid: number, cpus: string): void {
  try {
    execFileSync("taskset", ["-a", "-p", "-c", cpus, String(pid)], { stdio: "ignore" });
  } catch (err) {
    throw new TypeError(
      `could not pin process ${pid} to CPUs ${cpus} (taskset, from util-linux, is needed): ${err instanceof Error ? err.message : String(err)}`,
    );
  }
}
