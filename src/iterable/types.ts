/**
 * The values delivery hands back: one outcome per record, keyed by record (ENGINEERING.md, habit 2).
 * The snapshot writer, the sync logs and the report all read these.
 */
import type { FailureCode } from "../errors.js";

export type Operation = "subscribe" | "unsubscribe";

/** One subscriber to send. `key` is the caller's record key, echoed in the outcome. */
export interface DeliveryRecord {
  key: string;
  email?: string;
  userId?: string;
}

export interface SucceededOutcome {
  key: string;
  op: Operation;
  status: "succeeded";
}

export interface FailedOutcome {
  key: string;
  op: Operation;
  status: "failed";
  code: FailureCode;
  message: string;
  /** True when sending the same record again later may succeed (rate limit, 5xx, network, a user
   *  who does not exist yet); false when only a change of the row can help. */
  retryable: boolean;
}

export type RecordOutcome = SucceededOutcome | FailedOutcome;

/** Outcomes of one request (or of records refused before sending). `warnings` carries what the
 *  answer said that does not map onto a record, e.g. a failCount larger than the names listed. */
export interface BatchResult {
  op: Operation;
  outcomes: RecordOutcome[];
  warnings: string[];
}
