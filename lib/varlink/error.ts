/**
 * Varlink errors by name.
 *
 * @module
 */

/**
 * A Varlink error reply, by name, with its parameters: a method's failure as
 * the peer gave it (client side), or to give (service side).
 *
 * @example Refuse a call
 * ```ts
 * import { VarlinkError } from "@mountfd/mountfd";
 * throw new VarlinkError("org.varlink.service.InvalidParameter", { parameter: "mode" });
 * ```
 */
export class VarlinkError extends Error {
  /** The error's qualified name, such as `org.varlink.service.PermissionDenied`. */
  readonly error: string;
  /** Its parameters. */
  readonly parameters: Record<string, unknown>;

  /**
   * A named error.
   *
   * @param error The qualified name.
   * @param parameters Its parameters.
   * @param detail Why, for the message (and the service's log), not sent.
   */
  constructor(error: string, parameters: Record<string, unknown> = {}, detail?: string) {
    const shown = Object.keys(parameters).length > 0 ? ` ${JSON.stringify(parameters)}` : "";
    super(`${error}${shown}${detail ? `: ${detail}` : ""}`);
    this.name = "VarlinkError";
    this.error = error;
    this.parameters = parameters;
  }
}
