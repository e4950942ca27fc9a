/** Bounded concurrency over an async stream, results in completion order. */

type Settled<R> = { id: number; ok: true; value: R } | { id: number; ok: false; error: unknown };

/**
 * Runs `fn` on each item of `source` with at most `limit` running at once and yields results as
 * they complete. Reads one item ahead of the free slots, never more, so a slow consumer slows the
 * reading of the source instead of growing a buffer; the item read ahead is prepared while every
 * slot is busy, and a freed slot is refilled before its result is handed over, so that the
 * consumer's work on a result overlaps with requests in flight. The first rejection stops
 * everything: the others are aborted through their signal and awaited, then the error is thrown.
 * Stopping the iteration early (break) aborts and awaits the running ones too.
 */
export async function* mapWindow<T, R>(
  source: AsyncIterable<T>,
  limit: number,
  fn: (item: T, signal: AbortSignal) => Promise<R>,
  signal?: AbortSignal,
): AsyncGenerator<R> {
  const ctrl = new AbortController();
  const onAbort = () => ctrl.abort(signal?.reason);
  if (signal?.aborted) ctrl.abort(signal.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  const it = source[Symbol.asyncIterator]();
  const running = new Map<number, Promise<Settled<R>>>();
  let nextId = 0;
  let exhausted = false;
  // the item read ahead; its rejection is seen when it is awaited
  let ahead: Promise<IteratorResult<T>> | null = null;
  const max = Math.max(1, limit);
  const fill = async () => {
    while (!exhausted && running.size < max) {
      const next = await (ahead ?? it.next());
      ahead = null;
      if (next.done) {
        exhausted = true;
        break;
      }
      const id = nextId++;
      running.set(
        id,
        fn(next.value, ctrl.signal).then(
          (value): Settled<R> => ({ id, ok: true, value }),
          (error: unknown): Settled<R> => ({ id, ok: false, error }),
        ),
      );
    }
    if (!exhausted && ahead === null) {
      ahead = it.next();
      ahead.catch(() => undefined);
    }
  };
  try {
    await fill();
    for (;;) {
      if (running.size === 0) return;
      const settled = await Promise.race(running.values());
      running.delete(settled.id);
      if (!settled.ok) throw settled.error;
      await fill();
      yield settled.value;
    }
  } finally {
    signal?.removeEventListener("abort", onAbort);
    if (running.size > 0) {
      ctrl.abort();
      await Promise.allSettled(running.values());
    }
    if (!exhausted) {
      try {
        await it.return?.();
      } catch {
        // The source failing to close must not hide why we stopped.
      }
    }
  }
}
