/** A progress bar on stderr when it is a terminal (rows planned, sent, failed, rate, ETA). */
import cliProgress from "cli-progress";
import type { Progress } from "../sync/run.js";

export function progressReporter(enabled: boolean): { update(p: Progress): void; stop(): void } {
  if (!enabled || !process.stderr.isTTY) return { update() {}, stop() {} };
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format:
        " {phase} |{bar}| {value}/{total} sent, {failed} failed, {rate}/s, ETA {eta_formatted}",
      hideCursor: true,
      clearOnComplete: true,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  let phase = "";
  let started = Date.now();
  let active = false;
  return {
    update(p) {
      if (p.phase === "unsubscribe" || p.phase === "subscribe") {
        if (phase !== p.phase) {
          if (active) bar.stop();
          phase = p.phase;
          started = Date.now();
          bar.start(p.total, 0, { phase: p.phase.padEnd(11), failed: 0, rate: 0 });
          active = true;
        }
        const secs = Math.max(0.001, (Date.now() - started) / 1000);
        bar.update(p.done, { failed: p.failed, rate: Math.round(p.done / secs) });
      } else if (active) {
        bar.stop();
        active = false;
        phase = "";
      }
      if (p.phase === "plan") process.stderr.write(" planning in the warehouse...\n");
    },
    stop() {
      if (active) bar.stop();
      active = false;
    },
  };
}
