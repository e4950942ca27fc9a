/**
 * SQL text builders per dialect (pure). The string functions are written to agree with their JS
 * definitions in source.ts; test/sources/dialect.test.ts checks that against the real databases.
 */
import { SourceError } from "../errors.js";
import type { Dialect } from "./source.js";

/**
 * Every code point `String.prototype.trim` removes (ECMAScript WhiteSpace + LineTerminator, as of
 * Unicode 15). U+0085 and U+180E are deliberately absent: JS keeps them.
 */
export const JS_WHITESPACE: readonly number[] = [
  0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005,
  0x2006, 0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000, 0xfeff,
];
const ASCII_WHITESPACE = JS_WHITESPACE.filter((c) => c < 0x80);

function checkedNumber(value: number): string {
  if (!Number.isFinite(value)) throw new SourceError(`cannot write ${value} as a SQL literal`);
  return String(value);
}

function doubleQuoted(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function hex4(code: number): string {
  return code.toString(16).padStart(4, "0");
}

function md5OfParts(
  exprs: string[],
  part: (text: string) => string,
  castText: (e: string) => string,
) {
  if (exprs.length === 0) throw new SourceError("hash() needs at least one expression");
  // Each value is written as v<length>:<text>, NULL as n: unambiguous without any separator
  // character, so ('a','bc') and ('ab','c') and (NULL) vs ('') all hash differently.
  return exprs.map((e) => part(castText(e)));
}

export const duckdbDialect: Dialect = {
  name: "duckdb",
  quoteIdent: doubleQuoted,
  table: (schema, name) => `${doubleQuoted(schema)}.${doubleQuoted(name)}`,
  param: (index) => `$${index}`,
  literal(value) {
    if (value === null) return "NULL";
    if (typeof value === "number") return checkedNumber(value);
    // DuckDB string literals have no backslash escapes: only the quote needs doubling.
    return `'${value.replaceAll("'", "''")}'`;
  },
  trimLower(expr) {
    const set = String.fromCodePoint(...JS_WHITESPACE);
    return `lower(trim(${expr}, ${duckdbDialect.literal(set)}))`;
  },
  length: (expr) => `length(${expr})`,
  isPrintableAscii: (expr) => `(NOT regexp_matches(${expr}, '[^ -~]'))`,
  hash(exprs) {
    const parts = md5OfParts(
      exprs,
      (t) => `coalesce('v' || CAST(length(${t}) AS VARCHAR) || ':' || ${t}, 'n')`,
      duckdbDialect.castText,
    );
    return `md5(${parts.join(" || ")})`;
  },
  castText: (expr) => `CAST(${expr} AS VARCHAR)`,
  createTableAs: (target, select) => `CREATE TABLE ${target} AS\n${select}\n`,
  dropTable: (target) => `DROP TABLE IF EXISTS ${target}`,
};

export interface PostgresDialectOptions {
  /** the database encoding is UTF8: Unicode whitespace can be named in SQL */
  utf8: boolean;
  /** the ICU root collation exists: lower() then follows full Unicode case mapping, like JS */
  icu: boolean;
}

export function postgresDialect(options: PostgresDialectOptions): Dialect {
  const literal = (value: string | number | null): string => {
    if (value === null) return "NULL";
    if (typeof value === "number") return checkedNumber(value);
    if (value.includes("\0")) throw new SourceError("PostgreSQL text cannot hold a NUL character");
    const quoted = value.replaceAll("'", "''");
    // E'' reads backslashes the same way whatever standard_conforming_strings says.
    return value.includes("\\") ? `E'${quoted.replaceAll("\\", "\\\\")}'` : `'${quoted}'`;
  };
  const whitespace = options.utf8 ? JS_WHITESPACE : ASCII_WHITESPACE;
  const trimSet = `E'${whitespace.map((c) => (c < 0x80 ? `\\x${c.toString(16).padStart(2, "0")}` : `\\u${hex4(c)}`)).join("")}'`;
  const castText = (expr: string) => `CAST(${expr} AS text)`;
  return {
    name: "postgres",
    quoteIdent: doubleQuoted,
    table: (schema, name) => `${doubleQuoted(schema)}.${doubleQuoted(name)}`,
    param: (index) => `$${index}`,
    literal,
    trimLower: (expr) =>
      options.icu
        ? `lower(btrim(${expr}, ${trimSet}) COLLATE "und-x-icu")`
        : `lower(btrim(${expr}, ${trimSet}))`,
    length: (expr) => `char_length(${expr})`,
    isPrintableAscii: (expr) => `(${expr} !~ '[^ -~]')`,
    hash: (exprs) =>
      `md5(${md5OfParts(exprs, (t) => `coalesce('v' || char_length(${t}) || ':' || ${t}, 'n')`, castText).join(" || ")})`,
    castText,
    createTableAs: (target, select) => `CREATE TABLE ${target} AS\n${select}\n`,
    dropTable: (target) => `DROP TABLE IF EXISTS ${target}`,
  };
}

export interface MySqlDialectOptions {
  /** sql_mode lacks NO_BACKSLASH_ESCAPES: a backslash in a string literal escapes */
  backslashEscapes: boolean;
  /** the utf8mb4 collation whose LOWER() is closest to JS toLowerCase on this server */
  lowerCollation: string;
}

/** Escapes a string as a MySQL literal for the session's sql_mode. */
export function mysqlString(value: string, backslashEscapes: boolean): string {
  let body = value.replaceAll("'", "''");
  if (backslashEscapes) body = body.replaceAll("\\", "\\\\").replaceAll("\0", "\\0");
  return `'${body}'`;
}

export function mysqlDialect(options: MySqlDialectOptions): Dialect {
  const literal = (value: string | number | null): string => {
    if (value === null) return "NULL";
    if (typeof value === "number") return checkedNumber(value);
    return mysqlString(value, options.backslashEscapes);
  };
  const quoteIdent = (name: string) => `\`${name.replaceAll("`", "``")}\``;
  // Comparisons on utf8mb4_bin are exact; the server's default (*_ci) collations would call
  // 'A' = 'a' and let case folding map non-ASCII letters (U+212A KELVIN SIGN) onto ASCII ones.
  const utf8 = (expr: string) => `CONVERT(${expr} USING utf8mb4) COLLATE utf8mb4_bin`;
  const cls = `[${JS_WHITESPACE.map((c) => `\\x{${hex4(c)}}`).join("")}]`;
  // \z, not $: in PCRE `$` also matches before a final newline.
  const trimPattern = literal(`^${cls}+|${cls}+\\z`);
  const castText = (expr: string) =>
    `CAST(${expr} AS CHAR CHARACTER SET utf8mb4) COLLATE utf8mb4_bin`;
  return {
    name: "mysql",
    quoteIdent,
    table: (schema, name) => `${quoteIdent(schema)}.${quoteIdent(name)}`,
    param: () => "?",
    literal,
    trimLower: (expr) =>
      `(LOWER(REGEXP_REPLACE(${utf8(expr)}, ${trimPattern}, '') COLLATE ${options.lowerCollation}) COLLATE utf8mb4_bin)`,
    length: (expr) => `CHAR_LENGTH(${expr})`,
    isPrintableAscii: (expr) => `(${utf8(expr)} NOT REGEXP '[^ -~]')`,
    hash: (exprs) =>
      `MD5(CONCAT(${md5OfParts(exprs, (t) => `COALESCE(CONCAT('v', CHAR_LENGTH(${t}), ':', ${t}), 'n')`, castText).join(", ")}))`,
    castText,
    createTableAs: (target, select) =>
      `CREATE TABLE ${target} DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin AS\n${select}\n`,
    dropTable: (target) => `DROP TABLE IF EXISTS ${target}`,
  };
}

/** The dialects with their most common server settings, for SQL building without a connection. */
export const DIALECTS = {
  duckdb: duckdbDialect,
  postgres: postgresDialect({ utf8: true, icu: true }),
  mysql: mysqlDialect({ backslashEscapes: true, lowerCollation: "utf8mb4_unicode_520_ci" }),
} as const;
