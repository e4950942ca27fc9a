/**
 * Opens what one sync needs (its source and an Iterable client) for the length of one piece of
 * work, and closes both after: DuckDB files are held only while a run needs them.
 */
import { type Config, getSync, type ResolvedSync } from "../config/index.js";
import { type ClientExtras, IterableClient } from "../iterable/client.js";
import { openSource } from "../sources/index.js";
import type { Source } from "../sources/source.js";

export interface SyncContext {
  resolved: ResolvedSync;
  source: Source;
  api: IterableClient;
}

export async function withSync<T>(
  config: Config,
  syncName: string,
  fn: (ctx: SyncContext) => Promise<T>,
  opts: { signal?: AbortSignal; client?: ClientExtras } = {},
): Promise<T> {
  const resolved = getSync(config, syncName);
  const source = await openSource(resolved.source, {
    name: resolved.sync.source,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  const api = IterableClient.fromDestination(resolved.destination, opts.client);
  try {
    return await fn({ resolved, source, api });
  } finally {
    await api.close();
    await source.close();
  }
}
