/** A hand-driven clock for the scheduler: time moves only when the test advances it. */
import type { TimerClock } from "../../src/scheduler/scheduler.js";

interface Timer {
  id: number;
  at: number;
  fn: () => void;
}

export class FakeClock implements TimerClock {
  private t: number;
  private seq = 0;
  private timers: Timer[] = [];

  constructor(start: string) {
    this.t = Date.parse(start);
  }

  now(): Date {
    return new Date(this.t);
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const timer = { id: ++this.seq, at: this.t + Math.max(0, ms), fn };
    this.timers.push(timer);
    return timer.id;
  }

  clearTimeout(handle: unknown): void {
    this.timers = this.timers.filter((t) => t.id !== handle);
  }

  /** Pending timers' due times, soonest first. */
  pending(): Date[] {
    return this.timers
      .map((t) => t.at)
      .sort((a, b) => a - b)
      .map((at) => new Date(at));
  }

  /** Moves time forward, firing each timer that falls due at its own time, in order. */
  advance(ms: number): void {
    this.advanceTo(new Date(this.t + ms).toISOString());
  }

  advanceTo(iso: string): void {
    const end = Date.parse(iso);
    for (;;) {
      const due = this.timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at || a.id - b.id);
      const first = due[0];
      if (!first) break;
      this.timers = this.timers.filter((t) => t !== first);
      this.t = Math.max(this.t, first.at);
      first.fn();
    }
    this.t = Math.max(this.t, end);
  }
}
