/**
 * The emulator's in-memory Iterable project: users, static lists and GDPR-forgotten identifiers,
 * plus the per-project-type rules of lists/subscribe and lists/unsubscribe (NOTES.md, "Semantics
 * by project type"). No I/O here: the HTTP layer and the state file call into this class.
 */
import { FatalError } from "../errors.js";
import { isValidEmail } from "../identity/email.js";
import { FAILED_UPDATE_KEYS, type FailedUpdateKey, type ProjectType } from "../iterable/wire.js";

/** The identifiers a user or a list member is known by. */
export interface Identity {
  email?: string;
  userId?: string;
}

export interface EmulatorList {
  id: number;
  name: string;
  description?: string;
  createdAt: number;
  listType: "Standard";
}

/** A user as stored. Memberships live on the user (ids of its lists), not in per-list sets:
 *  one hash insert fewer per subscriber on the hot path, and identifier changes follow. */
interface UserRecord {
  /** Creation order; keeps listings stable and names users in the state file. */
  key: number;
  email: string | undefined;
  userId: string | undefined;
  lists: number[];
}

interface ListRecord extends EmulatorList {
  size: number;
}

/** What the wire layer hands over per subscriber; checked by hand on the hot path (http.ts). */
export interface BulkSubscriber {
  email?: unknown;
  userId?: unknown;
}

export interface BulkResult {
  successCount: number;
  failCount: number;
  failedUpdates: Record<FailedUpdateKey, string[]>;
}

/** Serialised form of the state, written to and read from --state files. */
export interface StateSnapshot {
  version: 1;
  projectType: ProjectType;
  nextListId: number;
  lists: (EmulatorList & { members: number[] })[];
  users: (Identity & { key: number })[];
  forgotten: { emails: string[]; userIds: string[] };
}

/** Iterable's userId rule (NOTES.md, Identifiers): 1..52 printable ASCII characters, no
 *  leading or trailing space. */
export function isValidIterableUserId(userId: string): boolean {
  const n = userId.length;
  if (n === 0 || n > 52) return false;
  for (let i = 0; i < n; i++) {
    const c = userId.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return false;
  }
  return userId.charCodeAt(0) !== 0x20 && userId.charCodeAt(n - 1) !== 0x20;
}

function emptyFailedUpdates(): Record<FailedUpdateKey, string[]> {
  const out = {} as Record<FailedUpdateKey, string[]>;
  for (const k of FAILED_UPDATE_KEYS) out[k] = [];
  return out;
}

/** Iterable list ids are large int64 values; starting high keeps them from looking like indexes. */
const FIRST_LIST_ID = 100_001;

export class EmulatorState {
  private readonly byEmail = new Map<string, UserRecord>();
  private readonly byUserId = new Map<string, UserRecord>();
  private readonly listsById = new Map<number, ListRecord>();
  private readonly forgottenEmails = new Set<string>();
  private readonly forgottenUserIds = new Set<string>();
  private nextListId = FIRST_LIST_ID;
  private nextUserKey = 1;

  constructor(readonly projectType: ProjectType) {}

  // ---- lists ----

  createList(name: string, description?: string): number {
    const id = this.nextListId++;
    const list: ListRecord = {
      id,
      name,
      createdAt: Date.now(),
      listType: "Standard",
      size: 0,
    };
    if (description !== undefined) list.description = description;
    this.listsById.set(id, list);
    return id;
  }

  deleteList(id: number): void {
    if (!this.listsById.delete(id)) throw listNotFound(id);
    for (const u of this.allUsers()) {
      const i = u.lists.indexOf(id);
      if (i >= 0) u.lists.splice(i, 1);
    }
  }

  hasList(id: number): boolean {
    return this.listsById.has(id);
  }

  /** Creation time of a list, or undefined when there is no such list. */
  listCreatedAt(id: number): number | undefined {
    return this.listsById.get(id)?.createdAt;
  }

  lists(): EmulatorList[] {
    return [...this.listsById.values()].map(({ size: _, ...list }) => ({ ...list }));
  }

  /** Members in the order their users were created. */
  members(listId: number): Identity[] {
    return this.memberRecords(listId).map(view);
  }

  listSize(listId: number): number {
    return this.list(listId).size;
  }

  hasMember(listId: number, who: Identity): boolean {
    this.list(listId);
    const user = this.findUser(who);
    return user?.lists.includes(listId) ?? false;
  }

  /** The identifiers getUsers prints, one per member (NOTES.md: text/plain, one a line). */
  memberIdentifiers(listId: number, preferUserId: boolean): string[] {
    const out: string[] = [];
    const byUserId =
      this.projectType === "userId" || (this.projectType === "hybrid" && preferUserId);
    for (const u of this.memberRecords(listId)) {
      const id = byUserId ? (u.userId ?? u.email) : (u.email ?? u.userId);
      if (id !== undefined) out.push(id);
    }
    return out;
  }

  // ---- users ----

  /** Seeds a user. An identifier already held by a user extends that user; one that would join
   *  two different users is refused. Seeding a forgotten identifier brings it back. */
  addUser(who: Identity): Identity {
    const email = who.email?.toLowerCase();
    const userId = who.userId;
    if (email === undefined && userId === undefined) {
      throw new FatalError("a user needs an email or a userId", "missing_identifier");
    }
    const byE = email !== undefined ? this.byEmail.get(email) : undefined;
    const byU = userId !== undefined ? this.byUserId.get(userId) : undefined;
    if (byE && byU && byE !== byU) {
      throw new FatalError(
        `email ${email} and userId ${userId} belong to different users`,
        "identity_conflict",
      );
    }
    if (email !== undefined) this.forgottenEmails.delete(email);
    if (userId !== undefined) this.forgottenUserIds.delete(userId);
    const user = byE ?? byU;
    if (!user) return view(this.createUser(email, userId));
    if (email !== undefined && user.email !== email) this.setEmail(user, email);
    if (userId !== undefined && user.userId !== userId) this.setUserId(user, userId);
    return view(user);
  }

  /** GDPR-forgets a user: deletes it (and its list memberships) and remembers every identifier
   *  it had, so that later subscribes answer forgotten* and never recreate it. */
  forgetUser(who: Identity): void {
    const email = who.email?.toLowerCase();
    if (email === undefined && who.userId === undefined) {
      throw new FatalError("forget needs an email or a userId", "missing_identifier");
    }
    const user = this.findUser(who);
    if (email !== undefined) this.forgottenEmails.add(email);
    if (who.userId !== undefined) this.forgottenUserIds.add(who.userId);
    if (!user) return;
    if (user.email !== undefined) this.forgottenEmails.add(user.email);
    if (user.userId !== undefined) this.forgottenUserIds.add(user.userId);
    this.deleteUser(user);
  }

  users(): Identity[] {
    return this.allUsers().map(view);
  }

  forgotten(): { emails: string[]; userIds: string[] } {
    return { emails: [...this.forgottenEmails], userIds: [...this.forgottenUserIds] };
  }

  /** Forgets everything except the list id counter, so an id handed out before a reset never
   *  names a different list afterwards. */
  reset(): void {
    this.byEmail.clear();
    this.byUserId.clear();
    this.listsById.clear();
    this.forgottenEmails.clear();
    this.forgottenUserIds.clear();
  }

  // ---- lists/subscribe and lists/unsubscribe ----

  /** Applies lists/subscribe. The list must exist (callers answer invalidListId before). */
  subscribe(
    listId: number,
    subscribers: readonly BulkSubscriber[],
    updateExistingUsersOnly: boolean,
  ): BulkResult {
    const list = this.list(listId);
    const result: BulkResult = {
      successCount: 0,
      failCount: 0,
      failedUpdates: emptyFailedUpdates(),
    };
    const f = result.failedUpdates;
    // Iterable ignores updateExistingUsersOnly in email-based projects (NOTES.md).
    const existingOnly = updateExistingUsersOnly && this.projectType !== "email";
    for (const sub of subscribers) {
      const rawEmail = sub.email as string | undefined;
      const userId = sub.userId as string | undefined;
      // Iterable stores emails lowercased and echoes them that way (NOTES.md, Identifiers).
      const email = rawEmail === undefined ? undefined : rawEmail.toLowerCase();
      const user = this.resolveForSubscribe(email, userId, existingOnly, f);
      if (user === undefined) {
        result.failCount++;
      } else {
        if (!user.lists.includes(listId)) {
          user.lists.push(listId);
          list.size++;
        }
        result.successCount++;
      }
    }
    return result;
  }

  /** Applies lists/unsubscribe: removes from this list only. Unknown users and non-members come
   *  back in notFound*, as Iterable answers (NOTES.md, Unsubscribe). */
  unsubscribe(listId: number, subscribers: readonly BulkSubscriber[]): BulkResult {
    const list = this.list(listId);
    const result: BulkResult = {
      successCount: 0,
      failCount: 0,
      failedUpdates: emptyFailedUpdates(),
    };
    const f = result.failedUpdates;
    for (const sub of subscribers) {
      const rawEmail = sub.email as string | undefined;
      const userId = sub.userId as string | undefined;
      const email = rawEmail === undefined ? undefined : rawEmail.toLowerCase();
      // The identifier Iterable identifies by: userId first except in email-based projects.
      const byUserId =
        userId !== undefined && (this.projectType !== "email" || email === undefined);
      let ok = false;
      if (byUserId) {
        if (!isValidIterableUserId(userId)) f.invalidUserIds.push(userId);
        else if (this.forgottenUserIds.has(userId)) f.forgottenUserIds.push(userId);
        else {
          const user = this.byUserId.get(userId);
          if (user !== undefined && leave(user, list)) ok = true;
          else f.notFoundUserIds.push(userId);
        }
      } else if (email !== undefined) {
        if (this.byEmail.get(email) === undefined && !isValidEmail(email)) {
          f.invalidEmails.push(email);
        } else if (this.forgottenEmails.has(email)) f.forgottenEmails.push(email);
        else {
          const user = this.byEmail.get(email);
          if (user !== undefined && leave(user, list)) ok = true;
          else f.notFoundEmails.push(email);
        }
      } else {
        f.invalidEmails.push("");
      }
      if (ok) result.successCount++;
      else result.failCount++;
    }
    return result;
  }

  /** Finds or creates the user a subscriber names, or records why not and returns undefined. */
  private resolveForSubscribe(
    email: string | undefined,
    userId: string | undefined,
    existingOnly: boolean,
    f: Record<FailedUpdateKey, string[]>,
  ): UserRecord | undefined {
    // A known email was valid when it was stored; only new ones need the (costlier) check.
    const byE = email === undefined ? undefined : this.byEmail.get(email);
    if (email !== undefined && byE === undefined && !isValidEmail(email)) {
      f.invalidEmails.push(email);
      return undefined;
    }
    if (userId !== undefined && !isValidIterableUserId(userId)) {
      f.invalidUserIds.push(userId);
      return undefined;
    }
    if (email === undefined && userId === undefined) {
      f.invalidEmails.push("");
      return undefined;
    }
    if (userId !== undefined && this.forgottenUserIds.has(userId)) {
      f.forgottenUserIds.push(userId);
      return undefined;
    }
    if (email !== undefined && this.forgottenEmails.has(email)) {
      f.forgottenEmails.push(email);
      return undefined;
    }
    const byU = userId === undefined ? undefined : this.byUserId.get(userId);

    if (this.projectType === "email") {
      if (email === undefined) {
        // userId alone: looked up as with preferUserId; never created (no email to key it by).
        if (byU === undefined) f.notFoundUserIds.push(userId as string);
        return byU;
      }
      // The email is the key; a userId already held by another user cannot move to this one.
      if (byU !== undefined && byU !== byE) {
        f.conflictUserIds.push(userId as string);
        return undefined;
      }
      if (byE === undefined) return this.createUser(email, userId);
      if (userId !== undefined && byE.userId !== userId) this.setUserId(byE, userId);
      return byE;
    }

    if (userId === undefined) {
      // Email alone: looked up by email. userId-based projects never create a user from one.
      if (byE !== undefined) return byE;
      if (this.projectType === "userId" || existingOnly) {
        f.notFoundEmails.push(email as string);
        return undefined;
      }
      return this.createUser(email, undefined);
    }

    // userId-based and hybrid with a userId: the userId is the primary key.
    if (email !== undefined && byE !== undefined && byE !== byU) {
      if (byU === undefined && byE.userId === undefined) {
        // An email-only user gains the userId: both identifiers now name one user.
        this.setUserId(byE, userId);
        return byE;
      }
      f.conflictEmails.push(email);
      return undefined;
    }
    if (byU === undefined) {
      if (existingOnly) {
        f.notFoundUserIds.push(userId);
        return undefined;
      }
      return this.createUser(email, userId);
    }
    if (email !== undefined && byU.email !== email) this.setEmail(byU, email);
    return byU;
  }

  // ---- persistence ----

  snapshot(): StateSnapshot {
    const users = this.allUsers();
    const members = new Map<number, number[]>();
    for (const u of users) {
      for (const id of u.lists) {
        const keys = members.get(id);
        if (keys) keys.push(u.key);
        else members.set(id, [u.key]);
      }
    }
    return {
      version: 1,
      projectType: this.projectType,
      nextListId: this.nextListId,
      lists: [...this.listsById.values()].map(({ size: _, ...list }) => ({
        ...list,
        members: members.get(list.id) ?? [],
      })),
      users: users.map((u) => ({ key: u.key, ...view(u) })),
      forgotten: this.forgotten(),
    };
  }

  restore(snap: StateSnapshot): void {
    this.reset();
    const byKey = new Map<number, UserRecord>();
    for (const u of snap.users) {
      const user = this.createUser(u.email?.toLowerCase(), u.userId);
      byKey.set(u.key, user);
    }
    for (const l of snap.lists) {
      const list: ListRecord = {
        id: l.id,
        name: l.name,
        createdAt: l.createdAt,
        listType: "Standard",
        size: 0,
      };
      for (const key of l.members) {
        const user = byKey.get(key);
        if (user && !user.lists.includes(l.id)) {
          user.lists.push(l.id);
          list.size++;
        }
      }
      if (l.description !== undefined) list.description = l.description;
      this.listsById.set(l.id, list);
    }
    for (const e of snap.forgotten.emails) this.forgottenEmails.add(e);
    for (const u of snap.forgotten.userIds) this.forgottenUserIds.add(u);
    const maxId = Math.max(FIRST_LIST_ID - 1, ...snap.lists.map((l) => l.id));
    this.nextListId = Math.max(snap.nextListId, maxId + 1);
  }

  // ---- internals ----

  private list(id: number): ListRecord {
    const list = this.listsById.get(id);
    if (!list) throw listNotFound(id);
    return list;
  }

  /** Every user once, in creation order. Every user has an email or a userId, so the two
   *  indexes together hold them all. */
  private allUsers(): UserRecord[] {
    const out = [...this.byUserId.values()];
    for (const u of this.byEmail.values()) if (u.userId === undefined) out.push(u);
    return out.sort((a, b) => a.key - b.key);
  }

  private memberRecords(listId: number): UserRecord[] {
    this.list(listId);
    return this.allUsers().filter((u) => u.lists.includes(listId));
  }

  private findUser(who: Identity): UserRecord | undefined {
    if (who.userId !== undefined) {
      const u = this.byUserId.get(who.userId);
      if (u !== undefined || who.email === undefined) return u;
    }
    return who.email === undefined ? undefined : this.byEmail.get(who.email.toLowerCase());
  }

  private createUser(email: string | undefined, userId: string | undefined): UserRecord {
    const user: UserRecord = { key: this.nextUserKey++, email, userId, lists: [] };
    if (email !== undefined) this.byEmail.set(email, user);
    if (userId !== undefined) this.byUserId.set(userId, user);
    return user;
  }

  private setEmail(user: UserRecord, email: string): void {
    if (user.email !== undefined) this.byEmail.delete(user.email);
    user.email = email;
    this.byEmail.set(email, user);
  }

  private setUserId(user: UserRecord, userId: string): void {
    if (user.userId !== undefined) this.byUserId.delete(user.userId);
    user.userId = userId;
    this.byUserId.set(userId, user);
  }

  private deleteUser(user: UserRecord): void {
    if (user.email !== undefined) this.byEmail.delete(user.email);
    if (user.userId !== undefined) this.byUserId.delete(user.userId);
    for (const id of user.lists) {
      const list = this.listsById.get(id);
      if (list) list.size--;
    }
    user.lists = [];
  }
}

function leave(user: UserRecord, list: ListRecord): boolean {
  const i = user.lists.indexOf(list.id);
  if (i < 0) return false;
  user.lists.splice(i, 1);
  list.size--;
  return true;
}

function view(u: UserRecord): Identity {
  const out: Identity = {};
  if (u.email !== undefined) out.email = u.email;
  if (u.userId !== undefined) out.userId = u.userId;
  return out;
}

function listNotFound(id: number): FatalError {
  return new FatalError(`list ${id} does not exist`, "list_not_found", 400);
}
