import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Schedule } from "../../src/config/index.js";
import { missedRun, nextRun } from "../../src/scheduler/next.js";

const at = (iso: string) => new Date(iso);
const next = (s: Schedule, after: string) => nextRun(s, at(after))?.toISOString() ?? null;

/** The first `n` instants of a schedule after `from`. */
function sequence(s: Schedule, from: string, n: number): string[] {
  const out: string[] = [];
  let t = at(from);
  for (let i = 0; i < n; i++) {
    const d = nextRun(s, t);
    if (!d) break;
    out.push(d.toISOString());
    t = d;
  }
  return out;
}

describe("nextRun", () => {
  it("manual never runs by itself", () => {
    expect(next({ type: "manual" }, "2024-05-01T10:00:00Z")).toBeNull();
  });

  it("basic without at is aligned to UTC midnight", () => {
    const s: Schedule = { type: "basic", every: "6h" };
    expect(sequence(s, "2024-05-01T01:00:00Z", 5)).toEqual([
      "2024-05-01T06:00:00.000Z",
      "2024-05-01T12:00:00.000Z",
      "2024-05-01T18:00:00.000Z",
      "2024-05-02T00:00:00.000Z",
      "2024-05-02T06:00:00.000Z",
    ]);
  });

  it("basic with at is aligned to that UTC time of day, also before it", () => {
    const s: Schedule = { type: "basic", every: "6h", at: "06:30" };
    expect(next(s, "2024-05-01T05:00:00Z")).toBe("2024-05-01T06:30:00.000Z");
    expect(next(s, "2024-05-01T00:10:00Z")).toBe("2024-05-01T00:30:00.000Z");
    expect(sequence(s, "2024-05-01T06:30:00Z", 4)).toEqual([
      "2024-05-01T12:30:00.000Z",
      "2024-05-01T18:30:00.000Z",
      "2024-05-02T00:30:00.000Z",
      "2024-05-02T06:30:00.000Z",
    ]);
  });

  it("basic is strictly after: an instant on the schedule gives the following one", () => {
    const s: Schedule = { type: "basic", every: "15m", at: "00:05" };
    expect(next(s, "2024-05-01T10:05:00.000Z")).toBe("2024-05-01T10:20:00.000Z");
    expect(next(s, "2024-05-01T10:04:59.999Z")).toBe("2024-05-01T10:05:00.000Z");
  });

  it("basic daily at a time runs once a day at it", () => {
    const s: Schedule = { type: "basic", every: "24h", at: "23:45" };
    expect(sequence(s, "2024-12-31T23:45:00Z", 2)).toEqual([
      "2025-01-01T23:45:00.000Z",
      "2025-01-02T23:45:00.000Z",
    ]);
  });

  it("basic with an interval that does not divide a day restarts at `at` each day", () => {
    const s: Schedule = { type: "basic", every: "7h", at: "06:00" };
    expect(sequence(s, "2024-05-01T05:00:00Z", 5)).toEqual([
      "2024-05-01T06:00:00.000Z",
      "2024-05-01T13:00:00.000Z",
      "2024-05-01T20:00:00.000Z",
      "2024-05-02T03:00:00.000Z",
      "2024-05-02T06:00:00.000Z",
    ]);
  });

  it("basic: next is after `after`, on the grid, and no later than one interval", () => {
    const everyMinutes = fc.integer({ min: 5, max: 24 * 60 });
    const atMinutes = fc.integer({ min: 0, max: 24 * 60 - 1 });
    const instant = fc.integer({ min: Date.UTC(2000, 0, 1), max: Date.UTC(2100, 0, 1) });
    fc.assert(
      fc.property(everyMinutes, atMinutes, instant, (every, atMin, t) => {
        const hh = String(Math.floor(atMin / 60)).padStart(2, "0");
        const mm = String(atMin % 60).padStart(2, "0");
        const s: Schedule = { type: "basic", every: `${every}m`, at: `${hh}:${mm}` };
        const n = nextRun(s, new Date(t));
        expect(n).not.toBeNull();
        const nt = n?.getTime() ?? 0;
        expect(nt).toBeGreaterThan(t);
        expect(nt - t).toBeLessThanOrEqual(every * 60_000);
        const sinceAt = (((nt - atMin * 60_000) % 86_400_000) + 86_400_000) % 86_400_000;
        expect(sinceAt % (every * 60_000)).toBe(0);
      }),
    );
  });

  it("cron is read in UTC and crosses midnight and month ends", () => {
    const s: Schedule = { type: "cron", expression: "30 23 * * *" };
    expect(sequence(s, "2024-01-31T23:00:00Z", 3)).toEqual([
      "2024-01-31T23:30:00.000Z",
      "2024-02-01T23:30:00.000Z",
      "2024-02-02T23:30:00.000Z",
    ]);
    const late: Schedule = { type: "cron", expression: "0 0,22 * * *" };
    expect(sequence(late, "2024-02-28T21:00:00Z", 4)).toEqual([
      "2024-02-28T22:00:00.000Z",
      "2024-02-29T00:00:00.000Z",
      "2024-02-29T22:00:00.000Z",
      "2024-03-01T00:00:00.000Z",
    ]);
  });

  it("cron honours weekdays and is strictly after", () => {
    const s: Schedule = { type: "cron", expression: "0 6 * * 1" };
    // 2024-05-06 is a Monday
    expect(next(s, "2024-05-06T06:00:00Z")).toBe("2024-05-13T06:00:00.000Z");
    expect(next(s, "2024-05-03T12:00:00Z")).toBe("2024-05-06T06:00:00.000Z");
  });
});

describe("missedRun", () => {
  const hourly: Schedule = { type: "basic", every: "1h" };

  it("is true once a scheduled instant passed since the last run started", () => {
    expect(missedRun(hourly, at("2024-05-01T10:00:05Z"), at("2024-05-01T11:00:00Z"))).toBe(true);
    expect(missedRun(hourly, at("2024-05-01T10:00:05Z"), at("2024-05-01T15:30:00Z"))).toBe(true);
  });

  it("is false when the next instant is still ahead", () => {
    expect(missedRun(hourly, at("2024-05-01T10:00:05Z"), at("2024-05-01T10:59:59Z"))).toBe(false);
  });

  it("is false for a sync that never ran and for manual syncs", () => {
    expect(missedRun(hourly, null, at("2024-05-01T10:00:00Z"))).toBe(false);
    expect(
      missedRun({ type: "manual" }, at("2020-01-01T00:00:00Z"), at("2024-05-01T10:00:00Z")),
    ).toBe(false);
  });

  it("cron across midnight", () => {
    const s: Schedule = { type: "cron", expression: "15 0 * * *" };
    expect(missedRun(s, at("2024-05-01T00:15:02Z"), at("2024-05-01T23:59:00Z"))).toBe(false);
    expect(missedRun(s, at("2024-05-01T00:15:02Z"), at("2024-05-02T00:15:00Z"))).toBe(true);
  });
});
