/**
 * Outcome rows of a run, buffered and written to the run's outcomes table in chunks. Each row says
 * whether the snapshot may take the record as done (`confirmed`), following PRODUCT.md:
 * succeeded -> confirmed; GDPR-forgotten -> confirmed (never retried until the row changes);
 * `retryFailedRecords: false` -> failed records confirmed as if synced; otherwise not confirmed,
 * so the next run sends the record again.
 */
import { type FailureCode, redact } from "../errors.js";
import type { Operation } from "../iterable/types.js";
import { OUTCOME_COLUMNS } from "../planner/sql.js";
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

export class OutcomeWriter {
  private buffer: unknown[][] = [];
  readonly tally = emptyTally();

  constructor(
    private readonly source: Source,
    private readonly table: string,
    private readonly retryFailedRecords: boolean,
    /** values that must never reach the warehouse (the API key), replaced in messages */
    private readonly secrets: string[] = [],
    private readonly chunkRows = 10_000,
    private readonly maxSamples = 20,
  ) {}

  async add(input: OutcomeRow): Promise<void> {
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
    if (this.buffer.length >= this.chunkRows) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.buffer.length === 0) return;
    const rows = this.buffer;
    this.buffer = [];
    await this.source.insertRows(this.source.stateSchema, this.table, [...OUTCOME_COLUMNS], [rows]);
  }
}
