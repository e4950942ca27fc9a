import { describe, expect, it } from "vitest";
import { CancelledError } from "../../src/errors.js";
import type { Clock } from "../../src/iterable/clock.js";
import { AdaptiveRateLimiter } from "../../src/iterable/rate-limiter.js";

/** Time only moves when someone sleeps. */
function fakeClock(): Clock & { t: number; sleeps: number[] } {
  const c = {
    t: 1_000_000,
    sleeps: [] as number[],
    now: () => c.t,
    async sleep(ms: number) {
      c.sleeps.push(ms);
      c.t += ms;
    },
  };
  return c;
}

describe("AdaptiveRateLimiter", () => {
  it("spaces requests at the starting rate, min(cap, 10)", async () => {
    const clock = fakeClock();
    const l = new AdaptiveRateLimiter({ maxRequestsPerSecond: 4, clock });
    expect(l.rate).toBe(4);
    const start = clock.t;
    for (let i = 0; i < 5; i++) await l.acquire();
    expect(clock.t - start).toBe(1000); // 5 requests at 4/s: the 5th starts at 1 s
    expect(new AdaptiveRateLimiter({ maxRequestsPerSecond: 50, clock }).rate).toBe(10);
  });

  it("reserves slots for concurrent callers", async () => {
    // A clock that never advances: three callers entering together get slots 0, 100, 200 ms out.
    const slots: number[] = [];
    const frozen: Clock = { now: () => 5000, sleep: async (ms) => void slots.push(ms) };
    const l = new AdaptiveRateLimiter({ maxRequestsPerSecond: 10, clock: frozen });
    await Promise.all([l.acquire(), l.acquire(), l.acquire()]);
    expect(slots).toEqual([100, 200]);
  });

  it("halves on 429 once per burst, grows additively, never above the cap", async () => {
    const clock = fakeClock();
    const l = new AdaptiveRateLimiter({ maxRequestsPerSecond: 10, clock, increase: 1 });
    l.onRateLimited();
    l.onRateLimited(); // same burst
    expect(l.rate).toBe(5);
    clock.t += 2000;
    l.onRateLimited();
    expect(l.rate).toBe(2.5);
    for (let i = 0; i < 100; i++) l.onSuccess();
    expect(l.rate).toBe(10);
  });

  it("never goes under the floor", () => {
    const clock = fakeClock();
    const l = new AdaptiveRateLimiter({ maxRequestsPerSecond: 1, minRate: 0.5, clock });
    for (let i = 0; i < 10; i++) {
      clock.t += 5000;
      l.onRateLimited();
    }
    expect(l.rate).toBe(0.5);
  });

  it("without a cap starts unlimited and backs off from the measured rate after a 429", async () => {
    const clock = fakeClock();
    const l = new AdaptiveRateLimiter({ clock });
    expect(l.rate).toBe(Number.POSITIVE_INFINITY);
    for (let i = 0; i < 40; i++) await l.acquire();
    expect(clock.sleeps).toEqual([]);
    l.onRateLimited();
    expect(l.rate).toBe(20);
    await l.acquire();
    await l.acquire();
    expect(clock.sleeps).toEqual([50]);
  });

  it("holds everyone back for Retry-After", async () => {
    const clock = fakeClock();
    const l = new AdaptiveRateLimiter({ maxRequestsPerSecond: 100, initialRate: 100, clock });
    l.onRateLimited(3000);
    const start = clock.t;
    await l.acquire();
    expect(clock.t - start).toBe(3000);
  });

  it("rejects with CancelledError when the signal is aborted", async () => {
    const l = new AdaptiveRateLimiter({ clock: fakeClock() });
    await expect(l.acquire(AbortSignal.abort())).rejects.toBeInstanceOf(CancelledError);
  });
});
