import { z } from "zod";
import { ConfigSchema } from "./schema.js";

/** JSON Schema of `audience-sync.yaml` for editors (yaml-language-server and the like). It
 *  describes what may be written (the input side), so settings with defaults are optional.
 *  Draft 7, the draft editor plugins support best. */
export function configJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(ConfigSchema, { io: "input", target: "draft-7" });
}
