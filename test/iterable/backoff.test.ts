import { describe, expect, it } from "vitest";
import { backoffDelay, parseRetryAfter } from "../../src/iterable/backoff.js";

describe("backoffDelay", () => {
  it("doubles the ceiling per attempt up to maxMs (random = just under 1)", () => {
    const top = () => 0.999999;
    const schedule = [1, 2, 3, 4, 5, 6, 7, 8].map((a) =>
      backoffDelay(a, { baseMs: 500, maxMs: 30_000 }, top),
    );
    expect(schedule).toEqual([499, 999, 1999, 3999, 7999, 15999, 29999, 29999]);
  });

  it("is full jitter: zero at random = 0, half the ceiling at 0.5", () => {
    expect(backoffDelay(3, {}, () => 0)).toBe(0);
    expect(backoffDelay(3, {}, () => 0.5)).toBe(1000);
  });

  it("never overflows for huge attempt numbers", () => {
    expect(backoffDelay(5000, { maxMs: 1234 }, () => 0.5)).toBe(617);
  });
});

describe("parseRetryAfter", () => {
  const now = Date.parse("2025-03-01T12:00:00Z");
  it("reads seconds", () => {
    expect(parseRetryAfter("120", now)).toBe(120_000);
    expect(parseRetryAfter(["2"], now)).toBe(2000);
  });
  it("reads an HTTP date, never negative", () => {
    expect(parseRetryAfter("Sat, 01 Mar 2025 12:00:05 GMT", now)).toBe(5000);
    expect(parseRetryAfter("Sat, 01 Mar 2025 11:00:00 GMT", now)).toBe(0);
  });
  it("ignores absent and unreadable values", () => {
    for (const v of [undefined, "", "soon", "-1", "1.5", "Foo, 99 Bar"]) {
      expect(parseRetryAfter(v, now)).toBeUndefined();
    }
  });
});
