/** The minimal loader both emulator benches measure against: pre-built subscribe bodies posted
 *  over a keep-alive pool, `concurrency` at a time. Returns how many subscribers succeeded. */
import type { Pool } from "undici";

export async function postBodies(
  pool: Pool,
  headers: Record<string, string>,
  bodies: Buffer[],
  concurrency: number,
): Promise<number> {
  let next = 0;
  let succeeded = 0;
  const worker = async () => {
    for (let i = next++; i < bodies.length; i = next++) {
      const res = await pool.request({
        path: "/api/lists/subscribe",
        method: "POST",
        headers,
        body: bodies[i],
      });
      const answer = (await res.body.json()) as { successCount: number };
      if (res.statusCode !== 200) throw new TypeError(`subscribe answered ${res.statusCode}`);
      succeeded += answer.successCount;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return succeeded;
}
