/** Opening a configured source; the one entry point the rest of audience-sync uses. */
import type { SourceConfig } from "../config/index.js";
import { type OpenOptions, openDuckDb } from "./duckdb.js";
import { openMySql } from "./mysql.js";
import { openPostgres } from "./postgres.js";
import type { Source } from "./source.js";

export { DIALECTS, duckdbDialect, mysqlDialect, postgresDialect } from "./dialects.js";
export { DEFAULT_BUSY_TIMEOUT_MS, type OpenOptions } from "./duckdb.js";
export {
  DEFAULT_BATCH_SIZE,
  type Dialect,
  type DialectName,
  type Lock,
  modelSql,
  type Source,
  type SqlExecutor,
} from "./source.js";

export type { SourceConfig };

/**
 * Connects to a source and checks that it answers. DuckDB: opens (creating) the file, waiting up
 * to `busyTimeoutMs` while another process holds it. Failures are SourceErrors.
 */
export async function openSource(config: SourceConfig, opts: OpenOptions = {}): Promise<Source> {
  switch (config.type) {
    case "duckdb":
      return await openDuckDb(config, opts);
    case "postgres":
      return await openPostgres(config, opts);
    case "mysql":
      return await openMySql(config, opts);
  }
}
