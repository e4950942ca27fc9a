/** Time as a dependency, so the rate limiter and retries can be tested without waiting. */
import { setTimeout as delay } from "node:timers/promises";
import { CancelledError } from "../errors.js";

export interface Clock {
  now(): number;
  /** Resolves after `ms`; rejects with CancelledError when `signal` aborts first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new CancelledError("the operation was cancelled");
}

export const systemClock: Clock = {
  now: () => Date.now(),
  async sleep(ms, signal) {
    throwIfAborted(signal);
    if (ms <= 0) return;
    try {
      await delay(ms, undefined, signal ? { signal } : undefined);
    } catch (err) {
      if (signal?.aborted) throw new CancelledError("the operation was cancelled", { cause: err });
      throw err;
    }
  },
};
