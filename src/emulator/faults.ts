/**
 * Scripted faults: a test queues what the next matching request(s) should suffer, so client
 * behaviour under 5xx, text-bodied 429s, resets and hangs is reproducible without randomness.
 */
import { z } from "zod";

export const Fault = z.discriminatedUnion("kind", [
  z.object({
    kind: z.literal("status"),
    status: z.number().int().min(100).max(599),
    body: z.string().optional(),
    contentType: z.string().optional(),
  }),
  z.object({
    kind: z.literal("rateLimitText"),
    retryAfterSeconds: z.number().nonnegative().optional(),
  }),
  /** Destroys the socket without answering. */
  z.object({ kind: z.literal("reset") }),
  /** Never answers; the client must time out. */
  z.object({ kind: z.literal("hang") }),
  z.object({ kind: z.literal("invalidListId") }),
]);
export type Fault = z.infer<typeof Fault>;

export const FaultOptions = z.object({
  /** Request path the fault applies to, e.g. "/api/lists/subscribe"; any /api/ path if absent. */
  path: z.string().optional(),
  /** How many matching requests suffer it; default 1. */
  times: z.number().int().positive().optional(),
});
export type FaultOptions = z.infer<typeof FaultOptions>;

interface Entry {
  fault: Fault;
  path: string | undefined;
  remaining: number;
}

export class FaultQueue {
  private entries: Entry[] = [];

  enqueue(fault: Fault, options: FaultOptions = {}): void {
    this.entries.push({
      fault: Fault.parse(fault),
      path: options.path,
      remaining: options.times ?? 1,
    });
  }

  clear(): void {
    this.entries = [];
  }

  get pending(): number {
    return this.entries.length;
  }

  /** Takes the first queued fault that applies to a request; `route` is the path with ids
   *  replaced by {id}, so "/api/lists/{id}/size" also matches. */
  take(path: string, route: string): Fault | undefined {
    if (this.entries.length === 0) return undefined;
    const i = this.entries.findIndex(
      (e) => e.path === undefined || e.path === path || e.path === route,
    );
    const entry = this.entries[i];
    if (entry === undefined) return undefined;
    entry.remaining--;
    if (entry.remaining <= 0) this.entries.splice(i, 1);
    return entry.fault;
  }
}
