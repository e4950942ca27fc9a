/**
 * Work done ahead, in a transaction of its own, and kept or thrown away once its outcome is known.
 *
 * A run's commit writes two large things: the sync logs of the records Iterable took and the next
 * snapshot. Most runs end with every record confirmed, and then both are known in advance (every
 * built batch logged as succeeded; the snapshot equal to the members). Written while sending goes
 * on, on another connection, they cost the run no time of its own; committed only when the outcome
 * proves them right, they are never seen otherwise: a run that stops or fails leaves nothing of them.
 */
import type { Source, SqlExecutor } from "./source.js";

export interface Speculation {
  /**
   * Commits the work if `keep` and the work succeeded; rolls it back otherwise (a work not started
   * yet is then never started). Resolves with whether it was committed: when not, the caller does
   * the work the regular way. Never rejects.
   */
  settle(keep: boolean): Promise<boolean>;
}

/** Thrown inside the transaction to roll it back: the outcome did not prove the work right. */
class Discard extends Error {}

/** Whether the source runs speculative work: DuckDB, where the run's own process does the work
 *  (a server-side warehouse does it on its own cores, and MySQL commits DDL at once). */
export function speculates(source: Source): boolean {
  return source.dialect.name === "duckdb";
}

/**
 * Works done ahead, one after another, from the moment the queue is opened until they are
 * settled. The run opens it once sending is under way and long enough to hide them; a work the
 * queue never reached starts when it is settled to be kept, as the regular work would.
 *
 * While the queue is open, DuckDB runs narrowed (Source.narrow): on one thread fewer than its
 * setting, since a statement takes every thread it has and the one left over keeps sending (the
 * event loop, and on a small machine whatever serves the requests) from waiting behind the work;
 * and on a third of its memory limit, since the works write to the database file, whose blocks
 * can leave memory once written, and sending reads the plan in order: what planning needed in
 * memory, sending does not (a 1M-row first sync: peak RSS ~450 -> ~337-357 MiB; see
 * NARROWED_MEMORY_SHARE). close() restores both for the commit.
 */
export class AheadQueue {
  private opened = false;
  private openGate: () => void = () => undefined;
  private tail: Promise<void>;
  /** gives back what open() narrowed (Source.narrow) */
  private release: Promise<(() => Promise<void>) | null> = Promise.resolve(null);

  constructor(private readonly source: Source) {
    this.tail = new Promise<void>((resolve) => {
      this.openGate = resolve;
    });
  }

  open(): void {
    if (this.opened) return;
    this.opened = true;
    const narrowed = this.source.narrow?.().catch(() => null) ?? Promise.resolve(null);
    this.release = narrowed;
    void narrowed.finally(() => this.openGate());
  }

  /** Restores the settings open() changed; the works go on, and may still be settled. */
  async close(): Promise<void> {
    const release = await this.release;
    this.release = Promise.resolve(null);
    await release?.();
  }

  /** Queues `work`: it starts once the queue is open and the work queued before it has run, or
   *  once it is settled to be kept, whichever comes first. */
  speculate(work: (tx: SqlExecutor) => Promise<void>): Speculation {
    let decide: (keep: boolean) => void = () => undefined;
    const decision = new Promise<boolean>((resolve) => {
      decide = resolve;
    });
    let worked: () => void = () => undefined;
    const next = new Promise<void>((resolve) => {
      worked = resolve;
    });
    const after = this.tail.then(() => true);
    this.tail = next;
    // starts when the work before it has run (true) or when settled, to keep (true) or not (false)
    const done = Promise.race([after, decision])
      .then(async (start) => {
        if (!start) return false;
        await this.source.transaction(async (tx) => {
          try {
            await work(tx);
          } finally {
            worked();
          }
          if (!(await decision)) throw new Discard();
        });
        return true;
      })
      .catch(() => false)
      .finally(() => worked());
    return {
      settle(keep: boolean) {
        decide(keep);
        return done;
      },
    };
  }
}
