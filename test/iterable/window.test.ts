import { describe, expect, it } from "vitest";
import { mapWindow } from "../../src/iterable/window.js";

/** A source that counts how far it has been read and whether it was closed. */
function counted(n: number) {
  const state = { read: 0, closed: false };
  async function* gen(): AsyncGenerator<number> {
    try {
      for (let i = 0; i < n; i++) {
        state.read = i + 1;
        yield i;
      }
    } finally {
      state.closed = true;
    }
  }
  return { state, source: gen() };
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("mapWindow", () => {
  it("yields one result per item, with at most `limit` running", async () => {
    const { source } = counted(50);
    let running = 0;
    let most = 0;
    const out: number[] = [];
    for await (const r of mapWindow(source, 4, async (x) => {
      running++;
      most = Math.max(most, running);
      await tick();
      running--;
      return x * 2;
    })) {
      out.push(r);
    }
    expect(out.sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i * 2));
    expect(most).toBeLessThanOrEqual(4);
    expect(most).toBeGreaterThan(1);
  });

  it("reads at most one item beyond the running ones while the consumer is slow", async () => {
    const { state, source } = counted(100);
    let seen = 0;
    for await (const _ of mapWindow(source, 3, async (x) => x)) {
      seen++;
      await tick();
      await tick();
      // the 3 running (or yielded and being consumed) plus one read ahead
      expect(state.read).toBeLessThanOrEqual(seen + 3 + 1);
    }
    expect(seen).toBe(100);
  });

  it("throws the first failure, aborts the others and closes the source", async () => {
    const { state, source } = counted(100);
    const aborted: number[] = [];
    const run = async () => {
      for await (const _ of mapWindow(source, 4, async (x, signal) => {
        if (x === 10) throw new TypeError("boom");
        await new Promise<void>((resolve) => {
          if (x > 10) signal.addEventListener("abort", () => resolve(), { once: true });
          else setImmediate(resolve);
        });
        if (signal.aborted) aborted.push(x);
        return x;
      })) {
        // consume
      }
    };
    await expect(run()).rejects.toThrow("boom");
    expect(aborted.length).toBeGreaterThan(0);
    expect(state.closed).toBe(true);
  });

  it("closes the source when the consumer stops early", async () => {
    const { state, source } = counted(100);
    for await (const r of mapWindow(source, 2, async (x) => x)) {
      if (r >= 5) break;
    }
    expect(state.closed).toBe(true);
    expect(state.read).toBeLessThan(100);
  });
});
