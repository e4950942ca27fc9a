/**
 * Email validity as Iterable judges it. Iterable validates addresses with Apache Commons
 * Validator's default `EmailValidator.getInstance().isValid()` (allowLocal = false,
 * allowTld = false); this module reproduces the behaviour of version 1.11.0, checked against the
 * conformance set in test/fixtures/email-vectors.json. Written from that behaviour, not from
 * Commons' source.
 *
 * It runs once per warehouse row, so everything is precompiled and the local part is checked by a
 * linear scan instead of a backtracking regex.
 */
import { createRequire } from "node:module";
import { domainToASCII } from "node:url";

/** Commons rejects a local part longer than 64 UTF-16 units (RFC 5321's limit). */
const MAX_LOCAL_LENGTH = 64;
/** Commons' DomainValidator limit, measured on the ASCII (punycode) form. */
const MAX_DOMAIN_LENGTH = 253;

// The `tlds` package ships IANA's root-zone list in Unicode form (e.g. "рф"); domains are compared
// in ASCII form, so the set holds the punycode of every entry too.
const IANA_TLDS: readonly string[] = createRequire(import.meta.url)("tlds");
const TLDS: ReadonlySet<string> = new Set(
  IANA_TLDS.flatMap((tld) => {
    const lower = tld.toLowerCase();
    const ascii = domainToASCII(lower);
    return ascii && ascii !== lower ? [lower, ascii] : [lower];
  }),
);

/**
 * ASCII characters allowed unescaped in an unquoted local part: printable, minus the RFC 5322
 * specials `( ) < > @ , ; : \ " . [ ]`. The apostrophe is a special there but Commons allows it.
 */
const ATOM_ASCII = (() => {
  const table = new Uint8Array(128);
  for (let c = 0x21; c < 0x7f; c++) table[c] = 1;
  for (const ch of '()<>@,;:\\".[]') table[ch.charCodeAt(0)] = 0;
  return table;
})();

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const DOT = 0x2e;

/**
 * Characters refused anywhere in the local part: every Unicode Cc control (C0, DEL, C1; 1.11.0
 * refuses them even quoted or backslash-escaped) and the line terminators U+2028/U+2029, which
 * Java's `.` does not match in Commons' `^(.+)@(\S+)$` split.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this matches
const FORBIDDEN_IN_LOCAL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
/** Java's `\s` (ASCII whitespace only): the domain is `\S+` in that split. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this matches
const JAVA_WHITESPACE = /[ \t\n\u000b\f\r]/;
/**
 * A symbolic domain may only hold letters, digits, hyphens and dots once converted to ASCII, and
 * IDN conversion never changes ASCII characters, so any other ASCII character is final. Checking
 * before conversion also keeps WHATWG-only behaviour (percent-decoding) out of the verdict.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this matches
const BAD_ASCII_IN_DOMAIN = /[\u0000-\u002c/:-@[-`{-\u007f]/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this matches
const NON_ASCII = /[^\u0000-\u007f]/;
const DOMAIN_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i;
const TOP_LABEL = /^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$/i;
const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const HEX_GROUP = /^[0-9a-f]{1,4}$/i;
const IPV6_TAG = /^ipv6:/i;
const IPV6_ZONE = /^[^\s/%]+$/;
const PREFIX_LENGTH = /^\d{1,3}$/;

// States of the local-part scanner, as bit flags so one byte holds every state reachable at a
// position (the grammar is ambiguous around `\"` inside quotes).
const AT_WORD_START = 1;
const IN_ATOM = 2;
const IN_QUOTES = 4;
const AFTER_QUOTES = 8;
const reach = new Uint8Array(MAX_LOCAL_LENGTH + 2);

/**
 * Local part grammar: word ("." word)*, where a word is either a run of atom characters and
 * backslash quoted-pairs (`\x` for any x), or a quoted string `"..."` in which a quote may appear
 * only escaped as `\"`.
 */
function isValidLocalPart(local: string): boolean {
  const n = local.length;
  if (n === 0 || n > MAX_LOCAL_LENGTH || FORBIDDEN_IN_LOCAL.test(local)) return false;
  reach.fill(0, 0, n + 1);
  reach[0] = AT_WORD_START;
  for (let i = 0; i < n; i++) {
    const states = reach[i] ?? 0;
    if (states === 0) continue;
    const c = local.charCodeAt(i);
    if (states & (AT_WORD_START | IN_ATOM)) {
      if (c === BACKSLASH) {
        if (i + 1 < n) reach[i + 2] = (reach[i + 2] ?? 0) | IN_ATOM;
      } else if (c > 0x7f || ATOM_ASCII[c] === 1) {
        reach[i + 1] = (reach[i + 1] ?? 0) | IN_ATOM;
      } else if (c === QUOTE && states & AT_WORD_START) {
        reach[i + 1] = (reach[i + 1] ?? 0) | IN_QUOTES;
      }
    }
    if (c === DOT && states & (IN_ATOM | AFTER_QUOTES)) {
      reach[i + 1] = (reach[i + 1] ?? 0) | AT_WORD_START;
    }
    if (states & IN_QUOTES) {
      if (c === QUOTE) {
        reach[i + 1] = (reach[i + 1] ?? 0) | AFTER_QUOTES;
      } else {
        reach[i + 1] = (reach[i + 1] ?? 0) | IN_QUOTES;
        if (c === BACKSLASH && local.charCodeAt(i + 1) === QUOTE) {
          reach[i + 2] = (reach[i + 2] ?? 0) | IN_QUOTES;
        }
      }
    }
  }
  return ((reach[n] ?? 0) & (IN_ATOM | AFTER_QUOTES)) !== 0;
}

function isValidIPv4(text: string): boolean {
  const m = IPV4.exec(text);
  if (!m) return false;
  for (let g = 1; g <= 4; g++) {
    const part = m[g] ?? "";
    if (part.length > 1 && part.charCodeAt(0) === 0x30) return false; // no leading zeros
    if (Number(part) > 255) return false;
  }
  return true;
}

/** Counts the 16-bit groups of a colon-separated run, or -1 if malformed. */
function countGroups(run: string, mayEndWithIPv4: boolean): number {
  if (run === "") return 0;
  const groups = run.split(":");
  let count = 0;
  for (let i = 0; i < groups.length; i++) {
    const group = groups[i] ?? "";
    if (mayEndWithIPv4 && i === groups.length - 1 && group.includes(".")) {
      if (!isValidIPv4(group)) return -1;
      count += 2;
    } else if (HEX_GROUP.test(group)) {
      count += 1;
    } else {
      return -1;
    }
  }
  return count;
}

/**
 * IPv6 text form (RFC 4291): eight groups, one `::` run of zeros, an IPv4 tail. Commons'
 * InetAddressValidator also takes a zone id (`%eth0`) and a prefix length (`/64`), so we do too.
 */
function isValidIPv6(text: string): boolean {
  let address = text;
  const slash = address.indexOf("/");
  if (slash !== -1) {
    const prefix = address.slice(slash + 1);
    if (!PREFIX_LENGTH.test(prefix) || Number(prefix) > 128) return false;
    address = address.slice(0, slash);
  }
  const percent = address.indexOf("%");
  if (percent !== -1) {
    if (!IPV6_ZONE.test(address.slice(percent + 1))) return false;
    address = address.slice(0, percent);
  }
  const gap = address.indexOf("::");
  if (gap === -1) return countGroups(address, true) === 8;
  const head = address.slice(0, gap);
  const tail = address.slice(gap + 2);
  if (tail.includes("::")) return false;
  const headCount = countGroups(head, false);
  const tailCount = countGroups(tail, true);
  // `::` stands for at least one zero group.
  return headCount >= 0 && tailCount >= 0 && headCount + tailCount <= 7;
}

/**
 * Address literals: `[1.2.3.4]`, or `[IPv6:...]` with the tag (any case). Commons 1.11.0 refuses a
 * bare IPv6 literal (`[::1]`) and an IPv4 address behind the IPv6 tag; older versions differed.
 */
function isValidAddressLiteral(inner: string): boolean {
  if (IPV6_TAG.test(inner)) return isValidIPv6(inner.slice(5));
  return isValidIPv4(inner);
}

function isValidHostname(domain: string): boolean {
  if (BAD_ASCII_IN_DOMAIN.test(domain)) return false;
  // Like Commons, only a domain with non-ASCII characters goes through IDN conversion; an empty
  // answer means the conversion refused it (e.g. U+FFFD or a C1 control).
  const ascii = NON_ASCII.test(domain) ? domainToASCII(domain) : domain;
  if (ascii === "" || ascii.length > MAX_DOMAIN_LENGTH) return false;
  // One trailing dot is allowed here; the whole address ending with "." is refused earlier.
  const labels = (ascii.endsWith(".") ? ascii.slice(0, -1) : ascii).split(".");
  if (labels.length < 2) return false;
  const top = labels[labels.length - 1] ?? "";
  if (!TOP_LABEL.test(top)) return false;
  for (let i = 0; i < labels.length - 1; i++) {
    if (!DOMAIN_LABEL.test(labels[i] ?? "")) return false;
  }
  return TLDS.has(top.toLowerCase());
}

function checkDomain(domain: string): boolean {
  if (domain.length === 0 || JAVA_WHITESPACE.test(domain)) return false;
  if (domain.length >= 2 && domain.startsWith("[") && domain.endsWith("]")) {
    return isValidAddressLiteral(domain.slice(1, -1));
  }
  return isValidHostname(domain);
}

// A few domains make up most rows of any audience, and IDN conversion is the costliest step, so
// verdicts are memoised. Bounded: cleared when full rather than evicting one by one.
const MAX_REMEMBERED_DOMAINS = 10_000;
const domainVerdicts = new Map<string, boolean>();

function isValidDomain(domain: string): boolean {
  const known = domainVerdicts.get(domain);
  if (known !== undefined) return known;
  const verdict = checkDomain(domain);
  if (domain.length <= MAX_DOMAIN_LENGTH + 2) {
    if (domainVerdicts.size >= MAX_REMEMBERED_DOMAINS) domainVerdicts.clear();
    domainVerdicts.set(domain, verdict);
  }
  return verdict;
}

/**
 * True when Iterable would accept `address` as an email. No trimming or lowercasing happens here:
 * `" a@b.com"` is invalid (use {@link normalizeEmail} first, as the sync does).
 */
export function isValidEmail(address: string): boolean {
  if (typeof address !== "string" || address.endsWith(".")) return false;
  // The domain never contains "@", so the split is at the last one.
  const at = address.lastIndexOf("@");
  if (at <= 0) return false;
  return isValidLocalPart(address.slice(0, at)) && isValidDomain(address.slice(at + 1));
}

/**
 * The form in which an email is compared, stored and sent: trimmed and lowercased (Iterable
 * lowercases emails itself, so "Joe@X.com" and "joe@x.com" are one user). Null when there is no
 * value; validity is not checked here.
 */
export function normalizeEmail(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value !== "string" && typeof value !== "number") return null;
  const normalized = String(value).trim().toLowerCase();
  return normalized === "" ? null : normalized;
}
