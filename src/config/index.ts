export { isDuration, parseDuration } from "./duration.js";
export { type Env, interpolateEnv } from "./interpolate.js";
export { type ConfigIssue, formatPath } from "./issues.js";
export { configJsonSchema } from "./json-schema.js";
export {
  DEFAULT_CONFIG_FILE,
  destinationBaseUrl,
  getSync,
  loadConfig,
  type ParseOptions,
  parseConfig,
  type ResolvedSync,
  splitTableName,
} from "./load.js";
export {
  type Config,
  ConfigSchema,
  CRON_OPTIONS,
  cronProblem,
  type DestinationConfig,
  type DuckDbSourceConfig,
  type ListConfig,
  MAX_BASIC_INTERVAL_MS,
  MAX_BATCH_BYTES,
  MAX_BATCH_SIZE,
  MIN_BASIC_INTERVAL_MS,
  type MySqlSourceConfig,
  type Observability,
  type PostgresSourceConfig,
  type Schedule,
  type SourceConfig,
  type SyncConfig,
} from "./schema.js";
