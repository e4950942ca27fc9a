/**
 * The demo's sample audience, generated inside DuckDB (SQL over range(), so 2,000 rows cost one
 * statement): a hybrid VIP audience with emails and userIds, and an email-only newsletter
 * audience. The second round changes both the way a real audience changes between two runs,
 * including the rows a sync must refuse.
 */

export const VIP_ROWS = 2_000;
export const NEWSLETTER_ROWS = 500;

/** The demo's models, as the config names them. */
export const DEMO_MODELS = {
  "vip-users": "select email, user_id from vip_customers",
  newsletter: "select email from newsletter_subscribers where opted_in",
} as const;

/** Builds the first version of the audience (DuckDB SQL). */
export function initialAudienceSql(): string[] {
  return [
    // Every 20th customer has no userId yet (signed up by email only): a hybrid project keeps
    // them by email.
    `create or replace table vip_customers as
       select i as customer_id,
              'customer' || lpad(i::varchar, 4, '0') || '@example.com' as email,
              case when i % 20 = 0 then null else 'u-' || lpad(i::varchar, 5, '0') end as user_id,
              1000 + (i * 37) % 5000 as lifetime_value
       from range(1, ${VIP_ROWS + 1}) t(i)`,
    `create or replace table newsletter_subscribers as
       select 'reader' || lpad(i::varchar, 3, '0') || '@example.org' as email,
              true as opted_in
       from range(1, ${NEWSLETTER_ROWS + 1}) t(i)`,
  ];
}

export interface AudienceChange {
  sync: keyof typeof DEMO_MODELS;
  what: string;
  /** what the second run should do with it */
  expect: string;
}

/** What the second round changes, for the demo to print before it syncs again. */
export const SECOND_ROUND: readonly AudienceChange[] = [
  { sync: "vip-users", what: "50 new customers", expect: "subscribed" },
  { sync: "vip-users", what: "30 customers removed", expect: "unsubscribed" },
  {
    sync: "vip-users",
    what: "customer u-00042 changed email to customer0042@newmail.example.com",
    expect: "subscribed again with the new email",
  },
  {
    sync: "vip-users",
    what: "a row with the invalid email 'not-an-email' and no userId",
    expect: "failed record (never sent)",
  },
  {
    sync: "vip-users",
    what: "a row with the whitespace-padded userId ' u-09999 ' and no email",
    expect: "failed record (never sent)",
  },
  { sync: "newsletter", what: "20 new readers", expect: "subscribed" },
  { sync: "newsletter", what: "10 readers opted out", expect: "unsubscribed" },
  {
    sync: "newsletter",
    what: "a reader typed 'reader@@example.org'",
    expect: "failed record (never sent)",
  },
];

/** Applies SECOND_ROUND to the tables initialAudienceSql made (DuckDB SQL). */
export function secondRoundSql(): string[] {
  return [
    `insert into vip_customers
       select i, 'customer' || lpad(i::varchar, 4, '0') || '@example.com',
              'u-' || lpad(i::varchar, 5, '0'), 1500
       from range(${VIP_ROWS + 1}, ${VIP_ROWS + 51}) t(i)`,
    "delete from vip_customers where customer_id between 101 and 130",
    "update vip_customers set email = 'customer0042@newmail.example.com' where customer_id = 42",
    "insert into vip_customers values (9001, 'not-an-email', null, 1200)",
    "insert into vip_customers values (9002, null, ' u-09999 ', 1300)",
    `insert into newsletter_subscribers
       select 'reader' || lpad(i::varchar, 3, '0') || '@example.org', true
       from range(${NEWSLETTER_ROWS + 1}, ${NEWSLETTER_ROWS + 21}) t(i)`,
    `update newsletter_subscribers set opted_in = false
       where email in (select 'reader' || lpad(i::varchar, 3, '0') || '@example.org' from range(1, 11) t(i))`,
    "insert into newsletter_subscribers values ('reader@@example.org', true)",
  ];
}
