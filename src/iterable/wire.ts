/**
 * Iterable's wire shapes as zod schemas, shared by the client (which validates answers) and the
 * emulator (which validates requests). Source: ../shared/iterable/api-docs.json and NOTES.md.
 */
import { z } from "zod";

export const PROJECT_TYPES = ["email", "userId", "hybrid"] as const;
export type ProjectType = (typeof PROJECT_TYPES)[number];

export const DATA_CENTER_HOSTS = {
  US: "https://api.iterable.com",
  EU: "https://api.eu.iterable.com",
} as const;
export type DataCenter = keyof typeof DATA_CENTER_HOSTS;

export const ListDetails = z.looseObject({
  id: z.number().int(),
  name: z.string(),
  createdAt: z.number().optional(),
  listType: z.string().optional(), // Standard | Dynamic | Suppression | Internal
  description: z.string().optional(),
});
export type ListDetails = z.infer<typeof ListDetails>;

export const GetListsResponse = z.looseObject({ lists: z.array(ListDetails) });
export type GetListsResponse = z.infer<typeof GetListsResponse>;

export const CreateListRequest = z.object({
  name: z.string().min(1),
  description: z.string().optional(),
});
export type CreateListRequest = z.infer<typeof CreateListRequest>;

export const CreateListResponse = z.looseObject({ listId: z.number().int() });
export type CreateListResponse = z.infer<typeof CreateListResponse>;

export const Subscriber = z.looseObject({
  email: z.string().optional(),
  userId: z.string().optional(),
  dataFields: z.record(z.string(), z.unknown()).optional(),
  preferUserId: z.boolean().optional(),
});
export type Subscriber = z.infer<typeof Subscriber>;

export const SubscribeRequest = z.object({
  listId: z.number().int(),
  subscribers: z.array(Subscriber),
  updateExistingUsersOnly: z.boolean().optional(),
});
export type SubscribeRequest = z.infer<typeof SubscribeRequest>;

export const Unsubscriber = z.looseObject({
  email: z.string().optional(),
  userId: z.string().optional(),
});
export type Unsubscriber = z.infer<typeof Unsubscriber>;

export const UnsubscribeRequest = z.object({
  listId: z.number().int(),
  subscribers: z.array(Unsubscriber),
  channelUnsubscribe: z.boolean().optional(),
  campaignId: z.number().int().optional(),
});
export type UnsubscribeRequest = z.infer<typeof UnsubscribeRequest>;

const strings = z.array(z.string()).optional();

export const FAILED_UPDATE_KEYS = [
  "invalidEmails",
  "invalidUserIds",
  "notFoundEmails",
  "notFoundUserIds",
  "forgottenEmails",
  "forgottenUserIds",
  "conflictEmails",
  "conflictUserIds",
  "invalidDataEmails",
  "invalidDataUserIds",
] as const;
export type FailedUpdateKey = (typeof FAILED_UPDATE_KEYS)[number];

export const FailedUserUpdates = z.looseObject({
  invalidEmails: strings,
  invalidUserIds: strings,
  notFoundEmails: strings,
  notFoundUserIds: strings,
  forgottenEmails: strings,
  forgottenUserIds: strings,
  conflictEmails: strings,
  conflictUserIds: strings,
  invalidDataEmails: strings,
  invalidDataUserIds: strings,
});
export type FailedUserUpdates = z.infer<typeof FailedUserUpdates>;

/** Answer of lists/subscribe and lists/unsubscribe. Older answers carry only the deprecated
 *  top-level invalidEmails / invalidUserIds; newer ones carry failedUpdates (and may carry both). */
export const UserBulkUpdateListResponse = z.looseObject({
  successCount: z.number().int(),
  failCount: z.number().int(),
  failedUpdates: FailedUserUpdates.optional(),
  invalidEmails: strings,
  invalidUserIds: strings,
  createdFields: strings,
  filteredOutFields: strings,
});
export type UserBulkUpdateListResponse = z.infer<typeof UserBulkUpdateListResponse>;

export const ITERABLE_ERROR_CODES = [
  "Success",
  "BadApiKey",
  "BadAuthorizationHeader",
  "BadJsonBody",
  "BadParams",
  "BatchTooLarge",
  "DatabaseError",
  "EmailAlreadyExists",
  "ExternalKeyConflict",
  "Forbidden",
  "ForbiddenParamsError",
  "ForgottenUserError",
  "GenericError",
  "InvalidEmailAddressError",
  "InvalidJwtPayload",
  "InvalidUserIdError",
  "JwtUserIdentifiersMismatched",
  "NotFound",
  "QueueEmailError",
  "RateLimitExceeded",
  "RequestFieldsTypesMismatched",
  "Unauthorized",
  "UniqueFieldsLimitExceeded",
  "UnknownEmailError",
  "UnknownUserIdError",
  "UserIdAlreadyExists",
] as const;

/** Iterable's error body. `code` is kept a string: an unknown code must not crash the client. */
export const IterableApiResponse = z.looseObject({
  code: z.string(),
  msg: z.string(),
  params: z.record(z.string(), z.unknown()).nullish(),
});
export type IterableApiResponse = z.infer<typeof IterableApiResponse>;

/** Text of Iterable's 429 body, which is plain text rather than JSON (NOTES.md, Limits). */
export const RATE_LIMIT_TEXT = "Rate limit exceeded. Please try again later.";
/** Substring of `msg` in the 400 answer for an unknown or just-deleted list (NOTES.md). */
export const INVALID_LIST_ID_MSG = "error.lists.invalidListId";
