import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isDuration, parseDuration } from "../../src/config/index.js";
import { ConfigError } from "../../src/errors.js";

describe("parseDuration", () => {
  it("reads minutes, hours, days and combinations", () => {
    expect(parseDuration("30m")).toBe(30 * 60_000);
    expect(parseDuration("6h")).toBe(6 * 3_600_000);
    expect(parseDuration("1d")).toBe(86_400_000);
    expect(parseDuration("1h30m")).toBe(90 * 60_000);
    expect(parseDuration("1d2h3m")).toBe(86_400_000 + 2 * 3_600_000 + 3 * 60_000);
    expect(parseDuration(" 90m ")).toBe(90 * 60_000);
  });

  it("refuses what is not a duration", () => {
    for (const text of ["", "6", "6 h", "6H", "1s", "30m1h", "-5m", "1.5h", "h"]) {
      expect(isDuration(text)).toBe(false);
      expect(() => parseDuration(text)).toThrow(ConfigError);
    }
    expect(() => parseDuration("6 hours")).toThrow(
      '"6 hours" is not a duration; write a number and a unit m, h or d, e.g. "30m", "6h", "1d" or "1h30m"',
    );
  });

  it("is the sum of its parts", () => {
    const part = fc.nat({ max: 1000 });
    fc.assert(
      fc.property(part, part, part, (d, h, m) => {
        const text = `${d}d${h}h${m}m`;
        expect(parseDuration(text)).toBe(((d * 24 + h) * 60 + m) * 60_000);
      }),
    );
  });
});
