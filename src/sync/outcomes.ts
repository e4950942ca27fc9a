/**
 * Outcome rows of a run, buffered and written to the run's outcomes table in chunks. Each row says
 * whether the snapshot may take the record as done (`confirmed`), following PRODUCT.md:
 * succeeded -> confirmed; GDPR-forgotten -> confirmed (never retried until the row changes);
 * `retryFailedRecords: false` -> failed records confirmed as if synced; otherwise not confirmed,
 * so the next run sends the record again.
 */
import { type FailureCode, redact } from "../errors.js";
import type { Operation, RecordOutcome } from "../iterable/types.js";
import { DUCKDB_WORK_CATALOG, OUTCOME_COLUMNS } from "../planner/sql.js";
import type { Source } from "../sources/source.js";

export interface OutcomeRow {
  key: string;
  op: Operation;
  email: string | null;
  userId: string | null;
  status: "succeeded" | "failed";
  code: FailureCode | null;
  message: string | null;
  /** failure of a record that only a change of the row can fix (forgotten user) */
  permanent?: boolean;
}

export interface OutcomeTally {
  succeeded: Record<Operation, number>;
  failed: Record<Operation, number>;
  warnings: number;
  byCode: Partial<Record<FailureCode, number>>;
  samples: OutcomeRow[];
}

export function emptyTally(): OutcomeTally {
  return {
    succeeded: { subscribe: 0, unsubscribe: 0 },
    failed: { subscribe: 0, unsubscribe: 0 },
    warnings: 0,
    byCode: {},
    samples: [],
  };
}

/**
 * Buffers outcome rows and writes them in chunks while delivery goes on: at most one insert is in
 * flight, and the next chunk fills meanwhile. A caller waits only when a chunk is full while the
 * previous one is still being written, so sending never stalls on the warehouse otherwise.
 */
export class OutcomeWriter {
  private buffer: unknown[][] = [];
  /** the insert in flight; never rejects (its error is kept in `failure`) */
  private inflight: Promise<void> | null = null;
  private failure: { error: unknown } | null = null;
  readonly tally = emptyTally();

  constructor(
    private readonly source: Source,
    private readonly table: string,
    private readonly retryFailedRecords: boolean,
    /** values that must never reach the warehouse (the API key), replaced in messages */
    private readonly secrets: string[] = [],
    private readonly chunkRows = 50_000,
    private readonly maxSamples = 20,
  ) {}

  /**
   * Buffers one outcome. Returns a promise only when the caller must wait before adding more (a
   * full chunk is being handed over); `await` it, or skip the await when it is undefined.
   */
  add(input: OutcomeRow): Promise<void> | undefined {
    const row =
      input.message && this.secrets.length > 0
        ? { ...input, message: redact(input.message, ...this.secrets) }
        : input;
    const failed = row.status === "failed";
    const confirmed = !failed || row.permanent === true || !this.retryFailedRecords;
    if (failed) {
      this.tally.failed[row.op]++;
      if (row.code) this.tally.byCode[row.code] = (this.tally.byCode[row.code] ?? 0) + 1;
      if (this.tally.samples.length < this.maxSamples) this.tally.samples.push(row);
    } else {
      this.tally.succeeded[row.op]++;
      if (row.code) this.tally.warnings++;
    }
    this.buffer.push([
      row.key,
      row.op,
      row.email,
      row.userId,
      row.status,
      confirmed ? 1 : 0,
      row.code,
      row.message,
    ]);
    return this.buffer.length >= this.chunkRows ? this.handOver() : undefined;
  }

  /** `add` of a success without a warning, the common case, without building an OutcomeRow. */
  addSucceeded(
    op: Operation,
    key: string,
    email: string | null,
    userId: string | null,
  ): Promise<void> | undefined {
    this.tally.succeeded[op]++;
    this.buffer.push([key, op, email, userId, "succeeded", 1, null, null]);
    return this.buffer.length >= this.chunkRows ? this.handOver() : undefined;
  }

  /**
   * One record's outcome from Iterable's answer, logged with the record's identifiers. `warning`
   * is what validation found on a record sent without the identifier it refused.
   */
  addOutcome(
    o: RecordOutcome,
    rec: { email: string | null; userId: string | null } | undefined,
    warning?: { code: FailureCode; message: string },
  ): Promise<void> | undefined {
    const email = rec?.email ?? null;
    const userId = rec?.userId ?? null;
    if (o.status === "succeeded" && warning === undefined) {
      return this.addSucceeded(o.op, o.key, email, userId);
    }
    if (o.status === "succeeded") {
      return this.add({
        key: o.key,
        op: o.op,
        email,
        userId,
        status: "succeeded",
        code: warning?.code ?? null,
        message: warning ? `warning: ${warning.message}; sent without it` : null,
      });
    }
    // notFound on unsubscribe is success, decided by the classifier; a forgotten user is never
    // retried (and on unsubscribe is no longer a member either).
    return this.add({
      key: o.key,
      op: o.op,
      email,
      userId,
      status: "failed",
      code: o.code,
      message: o.message,
      permanent: o.code === "forgotten_user",
    });
  }

  /** Counts `n` successes whose rows the warehouse writes itself (built batches, src/sync/bulk). */
  countSucceeded(op: Operation, n: number): void {
    this.tally.succeeded[op] += n;
  }

  /** Writes everything buffered; resolves once every row added so far is in the table. */
  async flush(): Promise<void> {
    await this.settle();
    if (this.buffer.length === 0) return;
    const rows = this.buffer;
    this.buffer = [];
    await this.insert(rows);
  }

  /** Starts writing the buffered chunk once the previous write is done (and threw nothing). */
  private async handOver(): Promise<void> {
    await this.settle();
    if (this.buffer.length === 0) return;
    const rows = this.buffer;
    this.buffer = [];
    this.inflight = this.insert(rows).then(
      () => {
        this.inflight = null;
      },
      (error: unknown) => {
        this.inflight = null;
        this.failure = { error };
      },
    );
  }

  /** Waits for the write in flight; rethrows a write's error (every later call does too). */
  private async settle(): Promise<void> {
    // a loop: another caller may have started a write while this one waited
    while (this.inflight) await this.inflight;
    if (this.failure) throw this.failure.error;
  }

  private async insert(rows: unknown[][]): Promise<void> {
    await this.source.insertRows(
      this.source.stateSchema,
      this.table,
      [...OUTCOME_COLUMNS],
      [rows],
      {
        catalog: DUCKDB_WORK_CATALOG,
      },
    );
  }
}
