/**
 * Adaptive client-side rate limit (AIMD). Iterable's limit for lists/subscribe and
 * lists/unsubscribe is not documented and is enforced per project as a leaky bucket (NOTES.md,
 * Limits), so we learn it: halve the rate on a 429, add a little after each success, and never go
 * above the configured cap.
 */
import { type Clock, systemClock, throwIfAborted } from "./clock.js";

export interface RateLimiterOptions {
  /** Hard cap in requests per second; unset means no cap. */
  maxRequestsPerSecond?: number;
  /** Starting rate; defaults to min(cap, 10) with a cap and to unlimited without one. */
  initialRate?: number;
  /** Floor the rate never goes under, in requests per second. */
  minRate?: number;
  /** Requests per second added after each success. */
  increase?: number;
  /** Factor applied on a 429. */
  decrease?: number;
  /** 429s within this many ms of a decrease count as the same event: a burst of concurrent
   *  requests that all hit the limit should halve the rate once, not once per request. */
  cooldownMs?: number;
  clock?: Clock;
}

export class AdaptiveRateLimiter {
  private currentRate: number;
  private readonly cap: number;
  private readonly minRate: number;
  private readonly increase: number;
  private readonly decrease: number;
  private readonly cooldownMs: number;
  private readonly clock: Clock;
  /** Earliest time the next request may start. */
  private nextAt = 0;
  private lastDecreaseAt = Number.NEGATIVE_INFINITY;
  /** Start times within the last second, to measure the rate while unlimited. */
  private recent: number[] = [];

  constructor(opts: RateLimiterOptions = {}) {
    this.cap = opts.maxRequestsPerSecond ?? Number.POSITIVE_INFINITY;
    if (!(this.cap > 0)) throw new RangeError("maxRequestsPerSecond must be positive");
    this.minRate = opts.minRate ?? 0.2;
    this.increase = opts.increase ?? 0.5;
    this.decrease = opts.decrease ?? 0.5;
    this.cooldownMs = opts.cooldownMs ?? 1000;
    this.clock = opts.clock ?? systemClock;
    const start =
      opts.initialRate ?? (Number.isFinite(this.cap) ? Math.min(this.cap, 10) : this.cap);
    this.currentRate = Math.max(this.minRate, Math.min(this.cap, start));
  }

  /** Requests per second allowed now (Infinity when unlimited). */
  get rate(): number {
    return this.currentRate;
  }

  /** Waits for the next slot. Slots are reserved on entry, so concurrent callers queue up
   *  one interval apart without a queue object. */
  async acquire(signal?: AbortSignal): Promise<void> {
    throwIfAborted(signal);
    const now = this.clock.now();
    const interval = Number.isFinite(this.currentRate) ? 1000 / this.currentRate : 0;
    const slot = Math.max(now, this.nextAt);
    this.nextAt = slot + interval;
    if (!Number.isFinite(this.currentRate)) this.remember(slot);
    if (slot > now) await this.clock.sleep(slot - now, signal);
  }

  onSuccess(): void {
    if (Number.isFinite(this.currentRate)) {
      this.currentRate = Math.min(this.cap, this.currentRate + this.increase);
    }
  }

  /** A 429: slow down, and when the server said how long to wait, let nobody start before. */
  onRateLimited(retryAfterMs?: number): void {
    const now = this.clock.now();
    if (retryAfterMs !== undefined && retryAfterMs > 0) {
      this.nextAt = Math.max(this.nextAt, now + retryAfterMs);
    }
    if (now - this.lastDecreaseAt < this.cooldownMs) return;
    this.lastDecreaseAt = now;
    let base = this.currentRate;
    if (!Number.isFinite(base)) {
      // Unlimited until now: start from what we were actually sending.
      this.remember(now, false);
      base = Math.max(this.recent.length, 1);
      this.recent = [];
    }
    this.currentRate = Math.max(this.minRate, base * this.decrease);
  }

  private remember(at: number, add = true): void {
    if (add) this.recent.push(at);
    while (this.recent.length > 0 && (this.recent[0] ?? 0) <= at - 1000) this.recent.shift();
  }
}
