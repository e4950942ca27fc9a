/**
 * When a schedule fires: pure functions of a schedule and an instant, so tests need no clock.
 * Every schedule is read in UTC.
 */
import { Cron } from "croner";
import { CRON_OPTIONS, parseDuration, type Schedule } from "../config/index.js";

const DAY_MS = 86_400_000;

function minutesOfDay(at: string | undefined): number {
  if (at === undefined) return 0;
  const [h, m] = at.split(":");
  return Number(h) * 60 + Number(m);
}

/**
 * The first instant of the schedule strictly after `after`, or null for `manual` (and for a cron
 * expression that never fires again).
 *
 * `basic`: the intervals restart at `at` (UTC, default 00:00) every day, so a day's runs are
 * at, at + every, at + 2·every, ... while before the next day's `at`. When `every` divides 24 h
 * (the usual 15m, 1h, 6h) this is simply every `every`, aligned to `at`; otherwise the last
 * interval of the day is shorter, and the runs still happen at the same times every day.
 */
export function nextRun(schedule: Schedule, after: Date): Date | null {
  switch (schedule.type) {
    case "manual":
      return null;
    case "basic": {
      const every = parseDuration(schedule.every);
      const offset = minutesOfDay(schedule.at) * 60_000;
      const t = after.getTime();
      // The day's sequence that `after` falls in starts at the latest `at` not after it.
      const dayStart = Math.floor((t - offset) / DAY_MS) * DAY_MS + offset;
      const candidate = dayStart + (Math.floor((t - dayStart) / every) + 1) * every;
      // Past the day's last run, the next one is the following day's `at`.
      return new Date(Math.min(candidate, dayStart + DAY_MS));
    }
    case "cron": {
      const job = new Cron(schedule.expression, { ...CRON_OPTIONS, paused: true });
      try {
        return job.nextRun(after);
      } finally {
        job.stop();
      }
    }
  }
}

/**
 * Whether the schedule fired at least once after the last run started and up to `now`: the
 * service was down (or busy elsewhere) at that time, and runs the sync once at start-up to catch
 * up, however many ticks it missed. A sync that never ran has missed nothing: its first run is
 * its first scheduled time (or a manual run).
 */
export function missedRun(schedule: Schedule, lastRunStart: Date | null, now: Date): boolean {
  if (lastRunStart === null) return false;
  const next = nextRun(schedule, lastRunStart);
  return next !== null && next.getTime() <= now.getTime();
}
