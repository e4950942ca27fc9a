import { describe, expect, it } from "vitest";
import type { Schedule } from "../../src/config/index.js";
import { describeSchedule, nextRunAt } from "../../src/sync/check.js";

const at = (iso: string) => new Date(iso);
const next = (s: Schedule, now: string) => nextRunAt(s, at(now))?.toISOString() ?? null;

describe("nextRunAt", () => {
  it("manual schedules never run by themselves", () => {
    expect(next({ type: "manual" }, "2025-03-01T10:00:00Z")).toBeNull();
    expect(describeSchedule({ type: "manual" })).toBe("manual");
  });

  it("cron is read in UTC, strictly after now", () => {
    const s: Schedule = { type: "cron", expression: "0 6 * * *" };
    expect(next(s, "2025-03-01T05:59:00Z")).toBe("2025-03-01T06:00:00.000Z");
    expect(next(s, "2025-03-01T06:00:00Z")).toBe("2025-03-02T06:00:00.000Z");
    expect(next({ type: "cron", expression: "30 23 * * 0" }, "2025-03-01T00:00:00Z")).toBe(
      "2025-03-02T23:30:00.000Z",
    );
  });

  it("basic counts from `at` each day", () => {
    const s: Schedule = { type: "basic", every: "6h", at: "06:30" };
    expect(next(s, "2025-03-01T06:29:00Z")).toBe("2025-03-01T06:30:00.000Z");
    expect(next(s, "2025-03-01T06:30:00Z")).toBe("2025-03-01T12:30:00.000Z");
    expect(next(s, "2025-03-01T23:00:00Z")).toBe("2025-03-02T00:30:00.000Z");
    expect(next(s, "2025-03-01T01:00:00Z")).toBe("2025-03-01T06:30:00.000Z");
  });

  it("basic without `at` counts from midnight UTC", () => {
    expect(next({ type: "basic", every: "30m" }, "2025-03-01T10:10:00Z")).toBe(
      "2025-03-01T10:30:00.000Z",
    );
    expect(next({ type: "basic", every: "1d" }, "2025-03-01T10:10:00Z")).toBe(
      "2025-03-02T00:00:00.000Z",
    );
  });

  it("an interval that does not divide a day starts again at `at` the next day", () => {
    const s: Schedule = { type: "basic", every: "5h", at: "06:30" };
    // 06:30, 11:30, 16:30, 21:30, 02:30 (+1d), then 06:30 (+1d) again
    expect(next(s, "2025-03-01T22:00:00Z")).toBe("2025-03-02T02:30:00.000Z");
    expect(next(s, "2025-03-02T02:30:00Z")).toBe("2025-03-02T06:30:00.000Z");
  });
});
