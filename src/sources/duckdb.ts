/**
 * The embedded DuckDB source. The database file is opened for the life of one Source (one run) and
 * closed after, so the user's own tools can write it between runs (PRODUCT.md, "Sharing the
 * warehouse"). DuckDB's file lock keeps other processes out; inside this process, Sources on the
 * same file share one instance, because a second instance in the same process would not be
 * stopped by the (per-process) file lock and the two would corrupt the file.
 */
import { mkdir } from "node:fs/promises";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import {
  blobValue,
  type DuckDBAppender,
  DuckDBArrayValue,
  DuckDBBlobValue,
  DuckDBBlobVector,
  DuckDBConnection,
  type DuckDBDataChunk,
  DuckDBDateValue,
  DuckDBDecimalValue,
  DuckDBInstance,
  DuckDBListValue,
  DuckDBMapValue,
  DuckDBStructValue,
  DuckDBTimestampMillisecondsValue,
  DuckDBTimestampNanosecondsValue,
  DuckDBTimestampSecondsValue,
  DuckDBTimestampTZValue,
  DuckDBTimestampValue,
  type DuckDBType,
  DuckDBTypeId,
  type DuckDBValue,
  DuckDBVarCharVector,
  type DuckDBVector,
} from "@duckdb/node-api";
import { CancelledError, SourceError } from "../errors.js";
import { duckdbDialect } from "./dialects.js";
import { DEFAULT_BATCH_SIZE, type Lock, type Source, type SqlExecutor } from "./source.js";
import {
  checkBatchShape,
  errorMessage,
  isoFromDate,
  isoFromLocalTimestamp,
  numberFromBigInt,
  numberFromText,
} from "./values.js";

/** The part of @duckdb/node-api's internal string accessors this module uses. */
interface DataAccessors {
  textDecoder?: unknown;
  getStringBytes?: (view: DataView, offset: number) => Uint8Array;
}

function loadAccessors(): DataAccessors {
  try {
    return createRequire(import.meta.url)(
      "@duckdb/node-api/lib/vectors/dataAccessors.js",
    ) as DataAccessors;
  } catch {
    return {};
  }
}
const accessors = loadAccessors();

/**
 * @duckdb/node-api decodes VARCHARs with a default TextDecoder, which drops a leading U+FEFF:
 * "\uFEFFabc" would read as "abc" while SQL on the same value still sees the BOM. Its decoder
 * is a mutable CommonJS export read on every call, so it can be swapped for one that keeps
 * the BOM. Guarded: if a later version moves it, values are read as before.
 */
const utf8 = new TextDecoder("utf-8", { ignoreBOM: true });
if (accessors.textDecoder instanceof TextDecoder) accessors.textDecoder = utf8;

/** What a DuckDBVarCharVector holds (private in its typings): 16-byte string_t slots, and a
 *  validity bitmap as 64-bit words (null when every value is valid). */
interface VarcharInternals {
  dataView?: unknown;
  validity?: { data?: unknown; offset?: unknown };
}

const getStringBytes = accessors.getStringBytes;
const littleEndian = os.endianness() === "LE";

/**
 * The values of a VARCHAR column of a chunk, read straight from the vector: strings of up to 12
 * bytes are inlined in the slot and decoded from there, longer ones are fetched through the
 * library's accessor. Reading through DuckDBValues instead costs a BigInt operation per validity
 * test and a cached item per value: most of a plan's streaming time. Null when the vector is not
 * laid out as expected (another library version): the caller then reads it the generic way.
 */
function readVarcharColumn(vector: DuckDBVector, count: number): (string | null)[] | null {
  if (!(vector instanceof DuckDBVarCharVector) || !getStringBytes || !littleEndian) return null;
  const { dataView, validity } = vector as unknown as VarcharInternals;
  if (!(dataView instanceof DataView) || dataView.byteLength < count * 16) return null;
  if (validity?.offset !== 0) return null;
  const words = validity.data;
  if (words !== null && !(words instanceof BigUint64Array)) return null;
  const valid = words ? new Uint32Array(words.buffer, words.byteOffset, words.length * 2) : null;
  const bytes = Buffer.from(dataView.buffer, dataView.byteOffset, dataView.byteLength);
  const out: (string | null)[] = new Array(count);
  for (let i = 0; i < count; i++) {
    if (valid && (((valid[i >>> 5] as number) >>> (i & 31)) & 1) === 0) {
      out[i] = null;
      continue;
    }
    const at = i * 16;
    const length = dataView.getUint32(at, true);
    // Buffer's UTF-8 decoding keeps a leading U+FEFF, like `utf8`.
    out[i] =
      length <= 12
        ? bytes.toString("utf8", at + 4, at + 4 + length)
        : utf8.decode(getStringBytes(dataView, at));
  }
  return out;
}

/**
 * The values of a BLOB column of a chunk as Buffers. Through DuckDBValues each blob is copied twice
 * (out of DuckDB's memory, then into a Buffer); getItemBytes hands over the first copy, a fresh
 * allocation for all but the shortest blobs, which the Buffer then wraps as is. For request bodies
 * built by the warehouse, that is ~50 MB less copied per 1M subscribers.
 */
function readBlobColumn(vector: DuckDBVector, count: number): (Buffer | null)[] | null {
  if (!(vector instanceof DuckDBBlobVector)) return null;
  const out: (Buffer | null)[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const bytes = vector.getItemBytes(i);
    out[i] =
      bytes === null
        ? null
        : bytes.byteLength <= 12
          ? // a view over the chunk's own memory: copied
            Buffer.from(bytes)
          : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  return out;
}

/** Plain JS values of one column of a chunk (see plainFromDuckDb), strings and blobs read straight
 *  from their vectors. */
function chunkColumn(chunk: DuckDBDataChunk, column: number): unknown[] {
  const vector = chunk.getColumnVector(column);
  return (
    readVarcharColumn(vector, chunk.rowCount) ??
    readBlobColumn(vector, chunk.rowCount) ??
    chunk.getColumnValues(column).map(plainFromDuckDb)
  );
}

export interface DuckDbOptions {
  path: string;
  stateSchema: string;
  /** DuckDB's memory_limit for the instance, e.g. "1GB"; DEFAULT_MEMORY_LIMIT when unset */
  memoryLimit?: string | undefined;
}

/**
 * DuckDB runs inside this process, and its buffer pool defaults to 80% of the machine's RAM: a
 * first sync of a large audience would keep every work table in memory. Capped, DuckDB spills
 * work tables to `<database>.tmp` instead (the in-memory work catalog's tables too). 192MB rather
 * than 256MB: a 10M-row plan then peaks at ~340-390 MB of RSS instead of ~420-510 MB, and a first
 * sync of 1M rows at ~435 MB instead of ~495 MB, for ~3% more time at 1M and none measured at 10M
 * (bench/plan.ts, bench/sync.ts); 128MB made 1M plans ~30% slower.
 */
export const DEFAULT_MEMORY_LIMIT = "192MB";

/*
 * The process holds more than memory_limit: DuckDB's allocator (jemalloc, linked into DuckDB on
 * Linux) keeps the pages of freed memory for seconds before it returns them, and the buffer pool
 * frees and allocates blocks all the time while it spills. A statement can end 150-250 MB above
 * the pool, and the next one starts with those pages. Three defaults hand them back:
 *
 * - allocator_background_threads (DuckDB: false): a jemalloc thread returns kept pages while a
 *   statement runs, instead of only when the allocator happens to be called;
 * - allocator_bulk_deallocation_flush_threshold (DuckDB: 512MB): an allocation larger than this
 *   from the buffer pool first returns every kept page; at 16MB that is a 10M-row plan's large
 *   hash tables, not its 256KB blocks;
 * - after a statement that ran PURGE_AFTER_MS or longer, every kept page is returned
 *   (purgeAllocator). Pages returned are faulted in again by the next statement (~25 ms for a
 *   1M-row plan's), so short statements are not followed by a purge.
 *
 * bench/plan.ts, 256MB: peak RSS of a 10M-row plan ~560-630 -> ~400-480 MB for ~1% more CPU; of
 * a 1M-row plan ~400-450 -> ~350 MB for ~5%. Returning pages as soon as they are freed
 * (jemalloc's dirty_decay_ms:0, reachable only through an environment variable read when the
 * library loads) peaks at ~390 MB at 10M rows but costs ~17% more CPU.
 */
export const DEFAULT_BULK_FLUSH_THRESHOLD = "16MB";
export const PURGE_AFTER_MS = 500;

/**
 * DuckDB's threads: one per CPU this process may run on (its affinity: taskset, a container's
 * cpuset), where DuckDB alone counts every CPU of the machine and would run that many threads on
 * fewer cores. On a 2-core machine with the process held to one core, a 1M-row first sync then
 * spends ~0.05-0.1 s less CPU before its first request (bench/sync.ts --pin, rounds alternated).
 */
function defaultThreads(): number {
  return os.availableParallelism();
}

export interface OpenOptions {
  signal?: AbortSignal;
  /** how long to wait for a file another process holds; default 10 s */
  busyTimeoutMs?: number;
  /** the source's name in the config, for messages */
  name?: string;
}

export const DEFAULT_BUSY_TIMEOUT_MS = 10_000;

interface SharedInstance {
  instance: DuckDBInstance;
  /** the memory_limit it was created with, as configured (restored exactly after narrow()) */
  memoryLimit: string;
  refs: number;
  locks: Set<string>;
  /** purges and setting changes run one after another; a purge asked for while one waits joins it */
  purgeTail: Promise<void>;
  purgeQueued: Promise<void> | null;
  /** holders of narrow(), and the thread count to restore when the last one releases */
  narrowed: number;
  threads: number | null;
}

// Keyed by absolute path. Holds the promise so that two concurrent opens share one attempt.
const openFiles = new Map<string, Promise<SharedInstance>>();

/** Serialises work on one connection: DuckDB runs one statement at a time per connection. */
class Mutex {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn, fn);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

export function plainFromDuckDb(value: DuckDBValue): unknown {
  if (value === null || typeof value !== "object") {
    return typeof value === "bigint" ? numberFromBigInt(value) : value;
  }
  if (value instanceof DuckDBDecimalValue) return numberFromText(value.toString());
  if (value instanceof DuckDBDateValue) return value.toString();
  if (
    value instanceof DuckDBTimestampValue ||
    value instanceof DuckDBTimestampSecondsValue ||
    value instanceof DuckDBTimestampMillisecondsValue ||
    value instanceof DuckDBTimestampNanosecondsValue
  ) {
    return isoFromLocalTimestamp(value.toString());
  }
  if (value instanceof DuckDBTimestampTZValue) {
    return value.isFinite ? isoFromDate(new Date(Number(value.micros / 1000n))) : value.toString();
  }
  if (value instanceof DuckDBBlobValue) {
    // the reader hands each blob its own fresh Buffer: no copy needed
    return Buffer.isBuffer(value.bytes) ? value.bytes : Buffer.from(value.bytes);
  }
  if (value instanceof DuckDBListValue || value instanceof DuckDBArrayValue) {
    return value.items.map(plainFromDuckDb);
  }
  if (value instanceof DuckDBStructValue) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value.entries)) out[k] = plainFromDuckDb(v);
    return out;
  }
  if (value instanceof DuckDBMapValue) {
    return value.entries.map((e) => ({
      key: plainFromDuckDb(e.key),
      value: plainFromDuckDb(e.value),
    }));
  }
  // time, interval, uuid, bit, ...: DuckDB's own text form
  return value.toString();
}

function duckDbParam(value: unknown): DuckDBValue {
  if (value === undefined || value === null) return null;
  switch (typeof value) {
    case "string":
    case "boolean":
    case "bigint":
      return value;
    case "number":
      if (!Number.isFinite(value)) throw new SourceError(`cannot bind ${value} as a parameter`);
      return value;
    default:
      if (value instanceof Date) return value.toISOString();
      if (value instanceof Uint8Array) return blobValue(value);
      return JSON.stringify(value);
  }
}

/** Row objects from column-major plain values (DuckDB reads columns about 1.6x faster than rows). */
function rowObjects<T>(names: string[], columns: unknown[][]): T[] {
  const rowCount = columns[0]?.length ?? 0;
  const out: Record<string, unknown>[] = new Array(rowCount);
  for (let r = 0; r < rowCount; r++) out[r] = {};
  for (let c = 0; c < names.length; c++) {
    const name = names[c] as string;
    const values = columns[c] as unknown[];
    for (let r = 0; r < rowCount; r++) (out[r] as Record<string, unknown>)[name] = values[r];
  }
  return out as T[];
}

const LOCK_HOLDER = /Conflicting lock is held in (.*?) \(PID (\d+)\)(?: by user (\S+))?/;

/** "PID 123 (/usr/bin/node, user ana)" from DuckDB's lock error, when it says. */
export function lockHolder(message: string): string | undefined {
  const m = LOCK_HOLDER.exec(message);
  if (!m) return undefined;
  const detail = [m[1], m[3] ? `user ${m[3].replace(/\.$/, "")}` : undefined].filter(Boolean);
  return `PID ${m[2]}${detail.length ? ` (${detail.join(", ")})` : ""}`;
}

function isLockConflict(message: string): boolean {
  return /Could not set lock on file|Conflicting lock/i.test(message);
}

async function createInstance(
  file: string,
  memoryLimit: string,
  opts: OpenOptions,
): Promise<DuckDBInstance> {
  const timeout = opts.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
  const started = Date.now();
  let delay = 50;
  for (;;) {
    if (opts.signal?.aborted) throw new CancelledError(`stopped while waiting for ${file}`);
    try {
      return await DuckDBInstance.create(file, {
        memory_limit: memoryLimit,
        allocator_bulk_deallocation_flush_threshold: DEFAULT_BULK_FLUSH_THRESHOLD,
        allocator_background_threads: "true",
        threads: String(defaultThreads()),
      });
    } catch (error) {
      const message = errorMessage(error);
      if (!isLockConflict(message)) {
        throw new SourceError(`could not open DuckDB file ${file}: ${message}`, { cause: error });
      }
      const waited = Date.now() - started;
      if (waited >= timeout) {
        const holder = lockHolder(message);
        throw new SourceError(
          `DuckDB file ${file} is busy: another process has it open${holder ? ` (${holder})` : ""}. ` +
            `Waited ${(timeout / 1000).toFixed(1)} s. DuckDB lets one process at a time open a ` +
            "file for writing; close that program's connection, or run when it is done.",
          { cause: error, retryable: true },
        );
      }
      try {
        await sleep(Math.min(delay, timeout - waited), undefined, { signal: opts.signal });
      } catch {
        throw new CancelledError(`stopped while waiting for ${file}`);
      }
      delay = Math.min(delay * 2, 500);
    }
  }
}

/** Sources on one file share its instance, so the first one's memoryLimit holds for all. */
async function acquire(
  file: string,
  memoryLimit: string,
  opts: OpenOptions,
): Promise<SharedInstance> {
  const inMemory = file === ":memory:";
  if (!inMemory) {
    const existing = openFiles.get(file);
    if (existing) {
      const shared = await existing;
      // refs 0: the last Source closed it while we waited; open it afresh.
      if (shared.refs === 0) return await acquire(file, memoryLimit, opts);
      shared.refs++;
      return shared;
    }
  }
  const opening = (async () => {
    if (!inMemory) await mkdir(path.dirname(file), { recursive: true });
    return {
      instance: await createInstance(file, memoryLimit, opts),
      memoryLimit,
      refs: 1,
      locks: new Set<string>(),
      purgeTail: Promise.resolve(),
      purgeQueued: null,
      narrowed: 0,
      threads: null,
    };
  })();
  if (!inMemory) {
    openFiles.set(file, opening);
    opening.catch(() => openFiles.delete(file));
  }
  return await opening;
}

/** One step on the instance's queue of purges and setting changes: they run one after another,
 *  so that no two change `threads` at once. */
function onInstanceQueue(shared: SharedInstance, fn: () => Promise<void>): Promise<void> {
  const step = shared.purgeTail.then(fn);
  shared.purgeTail = step.catch(() => undefined);
  return step;
}

/** Runs fn on a connection of its own (settings are the instance's, whatever connection sets them). */
async function onOwnConnection(
  shared: SharedInstance,
  fn: (conn: DuckDBConnection) => Promise<void>,
): Promise<void> {
  const conn = await DuckDBConnection.create(shared.instance);
  try {
    await fn(conn);
  } finally {
    conn.closeSync();
  }
}

async function currentThreads(conn: DuckDBConnection): Promise<number | null> {
  const reader = await conn.runAndReadAll("select current_setting('threads')::bigint as n");
  const threads = Number(reader.getRows()[0]?.[0]);
  return Number.isSafeInteger(threads) && threads >= 1 ? threads : null;
}

/**
 * Returns the pages DuckDB's allocator keeps from freed memory to the OS (see
 * DEFAULT_BULK_FLUSH_THRESHOLD). DuckDB has no statement for it, but relaunching its worker
 * threads flushes every arena: `threads` is moved by one and set back. Best effort: a purge that
 * fails costs memory, not the statement before it, so its errors are dropped.
 */
function purgeAllocator(shared: SharedInstance): Promise<void> {
  if (shared.purgeQueued) return shared.purgeQueued;
  const queued: Promise<void> = onInstanceQueue(shared, async () => {
    // Started: pages freed from now on need the next purge.
    if (shared.purgeQueued === queued) shared.purgeQueued = null;
    await onOwnConnection(shared, async (conn) => {
      const threads = await currentThreads(conn);
      if (threads === null) return;
      try {
        await conn.run(`SET threads = ${threads > 1 ? threads - 1 : 2}`);
      } finally {
        await conn.run(`SET threads = ${threads}`);
      }
    });
  }).catch(() => undefined);
  shared.purgeQueued = queued;
  return queued;
}

const SIZE_UNITS: Record<string, number> = {
  b: 1,
  bytes: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

/** Bytes of a DuckDB size ("192MB", "183.1 MiB"); null if it is not one. */
export function sizeBytes(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*$/i.exec(text);
  const unit = m ? SIZE_UNITS[(m[2] ?? "").toLowerCase()] : undefined;
  if (!m || unit === undefined) return null;
  const bytes = Number(m[1]) * unit;
  return Number.isFinite(bytes) && bytes > 0 ? bytes : null;
}

/**
 * The share of the configured memory limit DuckDB keeps while narrowed. Sending reads the plan in
 * order and the works done ahead write to the file, so less memory is needed than for planning;
 * but the work tables of the in-memory catalog that do not fit are written to `<database>.tmp`
 * (zstd-compressed) and read back by each pass over them. With the default 192MB: a quarter kept a
 * 1M-row first sync at ~323-351 MiB of peak RSS, but of the ~1.7 s of CPU DuckDB spent while
 * sending (bodies, logs, snapshot), a profile put ~0.45 s in that spill. A third takes ~0.4 s of
 * CPU less per run and ~7% less time, at ~337-357 MiB; a half, the same saving at ~352-391 MiB;
 * no narrowing, ~450 MiB (bench/sync.ts, rounds alternated, 6 against 6).
 */
const NARROWED_MEMORY_SHARE = 1 / 3;

/** Sets one thread fewer and a third of the configured memory limit (narrow), or restores both.
 *  Best effort: a setting that fails leaves the instance as it was, slower or larger, not wrong. */
function applyNarrow(shared: SharedInstance, narrow: boolean): Promise<void> {
  return onOwnConnection(shared, async (conn) => {
    if (narrow) {
      const threads = await currentThreads(conn);
      if (threads !== null && threads > 1) {
        shared.threads = threads;
        await conn.run(`SET threads = ${threads - 1}`);
      }
      const bytes = sizeBytes(shared.memoryLimit);
      if (bytes !== null) {
        await conn.run(`SET memory_limit = '${Math.floor(bytes * NARROWED_MEMORY_SHARE)}B'`);
      }
    } else {
      if (shared.threads !== null) await conn.run(`SET threads = ${shared.threads}`);
      shared.threads = null;
      await conn.run(`SET memory_limit = ${duckdbDialect.literal(shared.memoryLimit)}`);
    }
  });
}

/** Runs fn, then purges the allocator if fn ran long enough to have freed much memory. */
async function purgingAfter<T>(shared: SharedInstance, fn: () => Promise<T>): Promise<T> {
  const started = performance.now();
  const result = await fn();
  if (performance.now() - started >= PURGE_AFTER_MS) await purgeAllocator(shared);
  return result;
}

function release(file: string, shared: SharedInstance): void {
  shared.refs--;
  if (shared.refs > 0) return;
  if (openFiles.get(file) !== undefined) openFiles.delete(file);
  shared.instance.closeSync();
}

function wrap(error: unknown, what = "query failed"): SourceError {
  if (error instanceof SourceError) return error;
  return new SourceError(`DuckDB ${what}: ${errorMessage(error)}`, { cause: error });
}

class ConnectionExecutor implements SqlExecutor {
  readonly dialect = duckdbDialect;
  constructor(protected readonly conn: DuckDBConnection) {}

  async exec(sql: string, params?: unknown[]): Promise<void> {
    try {
      await this.conn.run(sql, params?.length ? params.map(duckDbParam) : undefined);
    } catch (error) {
      throw wrap(error);
    }
  }

  async query<T extends Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]> {
    try {
      const result = await this.conn.run(sql, params?.length ? params.map(duckDbParam) : undefined);
      const names = result.columnNames();
      const columns: unknown[][] = names.map(() => []);
      for (const chunk of await result.fetchAllChunks()) {
        for (let c = 0; c < names.length; c++) {
          const into = columns[c] as unknown[];
          for (const value of chunkColumn(chunk, c)) into.push(value);
        }
      }
      return rowObjects<T>(names, columns);
    } catch (error) {
      throw wrap(error);
    }
  }
}

/** The appender method for a JS value going into a column of `type`; DuckDB casts the rest. */
function appendCell(appender: DuckDBAppender, value: unknown, type: DuckDBType): void {
  if (value === null || value === undefined) {
    appender.appendNull();
  } else if (typeof value === "string") {
    appender.appendVarchar(value);
  } else if (typeof value === "number") {
    if (type.typeId === DuckDBTypeId.DOUBLE || type.typeId === DuckDBTypeId.FLOAT) {
      appender.appendDouble(value);
    } else if (Number.isSafeInteger(value) && type.typeId !== DuckDBTypeId.VARCHAR) {
      appender.appendBigInt(BigInt(value));
    } else {
      // Into VARCHAR a number reads as JS prints it ("1.5"), not as a DOUBLE cast ("1.5e0").
      appender.appendVarchar(String(value));
    }
  } else if (typeof value === "boolean" && type.typeId === DuckDBTypeId.BOOLEAN) {
    appender.appendBoolean(value);
  } else if (value instanceof Date) {
    appender.appendVarchar(value.toISOString());
  } else if (value instanceof Uint8Array) {
    appender.appendBlob(value);
  } else if (typeof value === "object") {
    appender.appendVarchar(JSON.stringify(value));
  } else {
    appender.appendVarchar(String(value));
  }
}

/** Below this many rows a constant column is not worth a temporary table. */
const CONSTANT_COLUMNS_MIN_ROWS = 1000;

/**
 * For each column, the SQL literal of the one value every row holds in it, or null where values
 * differ. The appender costs one native call per cell, so a column holding one value throughout
 * (an outcome's op, status and empty error of a clean run) is cheaper written once by the INSERT.
 * Only values whose literal means exactly what the appender would write are taken: null, text
 * without NUL, and safe integers going into integer columns. Null when no column qualifies.
 */
function constantColumns(
  batches: readonly unknown[][][],
  columnTypes: (string | undefined)[],
): (string | null)[] | null {
  let rows = 0;
  for (const batch of batches) rows += batch.length;
  if (rows < CONSTANT_COLUMNS_MIN_ROWS) return null;
  const first = batches.find((b) => b.length > 0)?.[0];
  if (!first) return null;
  const out: (string | null)[] = [];
  let any = false;
  for (let c = 0; c < columnTypes.length; c++) {
    const value = first[c];
    let literal: string | null = null;
    if (value === null || value === undefined) literal = "NULL";
    else if (typeof value === "string" && !value.includes("\u0000"))
      literal = duckdbDialect.literal(value);
    else if (
      typeof value === "number" &&
      Number.isSafeInteger(value) &&
      /INT/i.test(columnTypes[c] ?? "")
    )
      literal = String(value);
    if (literal !== null) {
      const same = (v: unknown) =>
        value === null || value === undefined ? v == null : v === value;
      if (batches.every((b) => b.every((row) => row.length === columnTypes.length && same(row[c]))))
        any = true;
      else literal = null;
    }
    out.push(literal);
  }
  return any ? out : null;
}

class DuckDbSource extends ConnectionExecutor implements Source {
  private readonly mutex = new Mutex();
  private closed = false;

  constructor(
    conn: DuckDBConnection,
    private readonly shared: SharedInstance,
    private readonly file: string,
    readonly stateSchema: string,
  ) {
    super(conn);
  }

  override exec(sql: string, params?: unknown[]): Promise<void> {
    return this.mutex.run(() => purgingAfter(this.shared, () => super.exec(sql, params)));
  }

  async narrow(): Promise<() => Promise<void>> {
    const shared = this.shared;
    await onInstanceQueue(shared, async () => {
      shared.narrowed++;
      if (shared.narrowed === 1) await applyNarrow(shared, true).catch(() => undefined);
    });
    let released = false;
    return () => {
      if (released) return Promise.resolve();
      released = true;
      return onInstanceQueue(shared, async () => {
        shared.narrowed--;
        if (shared.narrowed === 0) await applyNarrow(shared, false).catch(() => undefined);
      });
    };
  }

  override query<T extends Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]> {
    return this.mutex.run(() => purgingAfter(this.shared, () => super.query<T>(sql, params)));
  }

  // Each stream, bulk insert and transaction gets its own connection: a streaming result is
  // invalidated by the next statement on its connection, and a transaction must not capture
  // statements other callers run meanwhile.
  private async withConnection<T>(fn: (conn: DuckDBConnection) => Promise<T>): Promise<T> {
    const conn = await DuckDBConnection.create(this.shared.instance);
    try {
      return await fn(conn);
    } finally {
      conn.closeSync();
    }
  }

  async *stream<T extends Record<string, unknown>>(
    sql: string,
    params?: unknown[],
    batchSize = DEFAULT_BATCH_SIZE,
  ): AsyncIterable<T[]> {
    const started = performance.now();
    const conn = await DuckDBConnection.create(this.shared.instance);
    try {
      let result: Awaited<ReturnType<DuckDBConnection["stream"]>>;
      try {
        result = await conn.stream(sql, params?.length ? params.map(duckDbParam) : undefined);
      } catch (error) {
        throw wrap(error);
      }
      const names = result.columnNames();
      let batch: T[] = [];
      let fetching = result.fetchChunk();
      try {
        for (;;) {
          let chunk: Awaited<typeof fetching>;
          try {
            chunk = await fetching;
          } catch (error) {
            throw wrap(error);
          }
          if (!chunk || chunk.rowCount === 0) break;
          // DuckDB produces the next chunk on its own threads while this one is converted; a
          // fetched chunk stays valid after the next fetch.
          fetching = result.fetchChunk();
          fetching.catch(() => undefined);
          const columns: unknown[][] = [];
          for (let c = 0; c < names.length; c++) columns.push(chunkColumn(chunk, c));
          const rows = rowObjects<T>(names, columns);
          for (const row of rows) {
            batch.push(row);
            if (batch.length >= batchSize) {
              yield batch;
              batch = [];
            }
          }
        }
      } finally {
        // The connection must not close under a fetch still running.
        await fetching.catch(() => undefined);
      }
      if (batch.length > 0) yield batch;
    } finally {
      conn.closeSync();
      if (performance.now() - started >= PURGE_AFTER_MS) await purgeAllocator(this.shared);
    }
  }

  describe(modelSql: string): Promise<{ name: string; type: string }[]> {
    return this.mutex.run(async () => {
      try {
        const prepared = await this.conn.prepare(modelSql);
        try {
          const cols: { name: string; type: string }[] = [];
          for (let i = 0; i < prepared.columnCount; i++) {
            cols.push({ name: prepared.columnName(i), type: prepared.columnType(i).toString() });
          }
          return cols;
        } finally {
          prepared.destroySync();
        }
      } catch (error) {
        throw wrap(error, "could not read the model");
      }
    });
  }

  insertRows(
    schema: string,
    table: string,
    columns: string[],
    rows: AsyncIterable<unknown[][]> | Iterable<unknown[][]>,
    opts: { catalog?: string } = {},
  ): Promise<number> {
    return this.withConnection(async (conn) => {
      const d = this.dialect;
      const catalog = opts.catalog;
      const target = catalog
        ? `${d.quoteIdent(catalog)}.${d.table(schema, table)}`
        : d.table(schema, table);
      let count = 0;
      try {
        await conn.run("BEGIN TRANSACTION");
        const described = (
          await conn.runAndReadAll(
            "select column_name, data_type from duckdb_columns() where database_name = coalesce($3, current_database()) and schema_name = $1 and table_name = $2 order by column_index",
            [schema, table, catalog ?? null],
          )
        ).getRows();
        const tableCols = described.map((r) => String(r[0]));
        const typeOf = new Map(described.map((r) => [String(r[0]), String(r[1])]));
        const constants = Array.isArray(rows)
          ? constantColumns(
              rows,
              columns.map((c) => typeOf.get(c)),
            )
          : null;
        // Which of `columns` are appended row by row; the others are written by the INSERT.
        const appended = columns.flatMap((_, i) => (constants?.[i] == null ? [i] : []));
        // The appender fills every column in table order; other column lists, and batches with
        // constant columns, go through a temporary table of exactly the appended columns.
        const direct =
          appended.length === columns.length &&
          tableCols.length === columns.length &&
          tableCols.every((c, i) => c === columns[i]);
        let appendTable = table;
        if (!direct) {
          appendTable = `audience_sync_insert_${process.pid}_${Date.now()}`;
          const cols = appended.map((i) => d.quoteIdent(columns[i] as string)).join(", ");
          await conn.run(
            `CREATE TEMP TABLE ${d.quoteIdent(appendTable)} AS SELECT ${cols} FROM ${target} LIMIT 0`,
          );
        }
        const appender = direct
          ? await conn.createAppender(table, schema, catalog)
          : await conn.createAppender(appendTable, "main", "temp");
        const types: DuckDBType[] = [];
        for (let i = 0; i < appender.columnCount; i++) types.push(appender.columnType(i));
        try {
          for await (const batch of rows) {
            checkBatchShape(batch, columns.length);
            for (const row of batch) {
              for (let a = 0; a < appended.length; a++)
                appendCell(appender, row[appended[a] as number], types[a] as DuckDBType);
              appender.endRow();
            }
            count += batch.length;
          }
          appender.flushSync();
        } finally {
          appender.closeSync();
        }
        if (!direct) {
          const cols = columns.map((c) => d.quoteIdent(c)).join(", ");
          const values = columns.map((c, i) => constants?.[i] ?? d.quoteIdent(c)).join(", ");
          await conn.run(
            `INSERT INTO ${target} (${cols}) SELECT ${values} FROM temp.${d.quoteIdent(appendTable)}`,
          );
          await conn.run(`DROP TABLE temp.${d.quoteIdent(appendTable)}`);
        }
        await conn.run("COMMIT");
        return count;
      } catch (error) {
        await conn.run("ROLLBACK").catch(() => undefined);
        throw wrap(error, `insert into ${target} failed`);
      }
    });
  }

  async ensureSchema(schema: string): Promise<void> {
    await this.exec(`CREATE SCHEMA IF NOT EXISTS ${this.dialect.quoteIdent(schema)}`);
  }

  async tableExists(schema: string, table: string): Promise<boolean> {
    const rows = await this.query(
      "select 1 from duckdb_tables() where database_name = current_database() and schema_name = $1 and table_name = $2",
      [schema, table],
    );
    return rows.length > 0;
  }

  async listTables(schema: string, prefix = ""): Promise<string[]> {
    const rows = await this.query<{ table_name: string }>(
      "select table_name from duckdb_tables() where database_name = current_database() and schema_name = $1 and starts_with(table_name, $2) order by table_name",
      [schema, prefix],
    );
    return rows.map((r) => r.table_name);
  }

  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return purgingAfter(this.shared, () => this.transactionOnce(fn));
  }

  private transactionOnce<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return this.withConnection(async (conn) => {
      const tx = new ConnectionExecutor(conn);
      await tx.exec("BEGIN TRANSACTION");
      try {
        const result = await fn(tx);
        await tx.exec("COMMIT");
        return result;
      } catch (error) {
        await conn.run("ROLLBACK").catch(() => undefined);
        throw error;
      }
    });
  }

  async tryLock(name: string): Promise<Lock | null> {
    // Other processes cannot open the file while this one has it, so only this process's own
    // Sources on the same file can compete for a name.
    const key = `${this.stateSchema}\u0000${name}`;
    if (this.shared.locks.has(key)) return null;
    this.shared.locks.add(key);
    let held = true;
    return {
      release: async () => {
        if (held) this.shared.locks.delete(key);
        held = false;
      },
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.mutex.run(async () => {
      this.conn.closeSync();
      // A purge has a connection of its own: the instance must not close under it.
      await this.shared.purgeTail;
      release(this.file, this.shared);
    });
  }
}

export async function openDuckDb(config: DuckDbOptions, opts: OpenOptions = {}): Promise<Source> {
  // Relative paths are relative to the process's working directory, like the models' read_csv().
  const file = config.path === ":memory:" ? config.path : path.resolve(config.path);
  const shared = await acquire(file, config.memoryLimit?.trim() || DEFAULT_MEMORY_LIMIT, opts);
  try {
    const conn = await shared.instance.connect();
    return new DuckDbSource(conn, shared, file, config.stateSchema);
  } catch (error) {
    release(file, shared);
    throw wrap(error, "connection failed");
  }
}
