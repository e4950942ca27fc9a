/**
 * The state schema in the user's warehouse: run history, per-record sync logs, per-sync metadata
 * (list id, config fingerprint, committed snapshot) and the register of committed snapshots.
 * DDL and SQL here are pure strings per dialect; src/state/store.ts runs them.
 */
import { DUCKDB_STORED_KEY_TYPE } from "../planner/sql.js";
import type { Dialect } from "../sources/source.js";

export const STATE_TABLES = ["sync_metadata", "sync_snapshots", "sync_runs", "sync_logs"] as const;

function types(d: Dialect) {
  switch (d.name) {
    case "mysql":
      return {
        name: "varchar(200) character set utf8mb4 collate utf8mb4_bin",
        text: "text",
        id: "varchar(400) character set utf8mb4 collate utf8mb4_bin",
        big: "bigint",
        int: "int",
        ts: "datetime(3)",
        opts: " engine=InnoDB default charset=utf8mb4",
        logName: "varchar(200) character set utf8mb4 collate utf8mb4_bin",
        logOperation: "varchar(12)",
        logStatus: "varchar(12)",
      };
    case "postgres":
      return {
        name: "text",
        text: "text",
        id: "text",
        big: "bigint",
        int: "int",
        ts: "timestamptz",
        opts: "",
        logName: "text",
        logOperation: "varchar(12)",
        logStatus: "varchar(12)",
      };
    default:
      return {
        name: "varchar",
        text: "varchar",
        // Identifiers are mostly distinct: FSST is what DuckDB would pick, and naming it spares
        // the analysis of every method on each write (1M log rows: ~1.9 s -> ~1.2 s).
        id: DUCKDB_STORED_KEY_TYPE,
        big: "bigint",
        int: "integer",
        ts: "timestamptz",
        opts: "",
        // A sync log row per record: the columns that repeat the same few values are written
        // the cheapest way, an enum (a byte per row) where the values are known, a named
        // dictionary for the sync's name (1M log rows: ~0.98 s -> ~0.67 s of CPU).
        logName: "varchar using compression dictionary",
        logOperation: "enum('subscribe', 'unsubscribe')",
        logStatus: "enum('succeeded', 'failed')",
      };
  }
}

/** The current time, in UTC, as the dialect stores it. */
export function nowSql(d: Dialect): string {
  switch (d.name) {
    case "mysql":
      return "utc_timestamp(3)";
    case "postgres":
      return "now()";
    default:
      return "current_timestamp";
  }
}

/** `days` whole days before now (UTC), for log retention. `days` is a validated integer. */
export function daysAgoSql(d: Dialect, days: number): string {
  const n = Math.trunc(days);
  switch (d.name) {
    case "mysql":
      return `(utc_timestamp(3) - interval ${n} day)`;
    case "postgres":
      return `(now() - interval '${n} days')`;
    default:
      return `(current_timestamp - interval ${n} day)`;
  }
}

export function stateDdl(d: Dialect, schema: string): string[] {
  const t = types(d);
  const tbl = (n: string) => d.table(schema, n);
  const ine = "if not exists";
  return [
    `create table ${ine} ${tbl("sync_metadata")} (sync_name ${t.name} primary key, list_id ${t.big}, list_name ${t.text}, ` +
      `fingerprint ${t.text}, snapshot_table ${t.text}, snapshot_run_id ${t.int}, updated_at ${t.ts})${t.opts}`,
    `create table ${ine} ${tbl("sync_snapshots")} (sync_name ${t.name} not null, run_id ${t.int} not null, table_name ${t.name} not null, ` +
      `fingerprint ${t.text}, created_at ${t.ts}, primary key (sync_name, run_id))${t.opts}`,
    `create table ${ine} ${tbl("sync_runs")} (sync_name ${t.name} not null, run_id ${t.int} not null, status varchar(30) not null, ` +
      `started_at ${t.ts}, finished_at ${t.ts}, full_resync ${t.int}, list_id ${t.big}, rows_read ${t.big}, invalid_rows ${t.big}, ` +
      `planned_subscribe ${t.big}, planned_unsubscribe ${t.big}, succeeded_subscribe ${t.big}, succeeded_unsubscribe ${t.big}, ` +
      `failed_subscribe ${t.big}, failed_unsubscribe ${t.big}, skipped_unsubscribe ${t.big}, unchanged ${t.big}, ` +
      `failures_by_code ${t.text}, error ${t.text}, primary key (sync_name, run_id))${t.opts}`,
    `create table ${ine} ${tbl("sync_logs")} (sync_name ${t.logName} not null, run_id ${t.int} not null, record_key ${t.id}, ` +
      `operation ${t.logOperation} not null, email ${t.id}, user_id ${t.id}, status ${t.logStatus} not null, error_code varchar(40), ` +
      `error_message ${t.text}, logged_at ${t.ts})${t.opts}`,
  ];
}

/** Indexes that keep `runs`, `failures` and retention fast; created once, errors ignored when present. */
export function stateIndexes(d: Dialect, schema: string): string[] {
  // DuckDB scans by zone maps and pays for ART indexes on every insert and delete: none there.
  if (d.name === "duckdb") return [];
  const ix = (name: string) => d.quoteIdent(`${schema}_${name}`.slice(0, 60));
  const on = d.name === "postgres" ? "if not exists " : "";
  return [
    `create index ${on}${ix("sync_logs_run_idx")} on ${d.table(schema, "sync_logs")} (sync_name, run_id)`,
    `create index ${on}${ix("sync_logs_time_idx")} on ${d.table(schema, "sync_logs")} (logged_at)`,
  ];
}
