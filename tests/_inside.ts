/**
 * What the container tests share: a command that must succeed inside a
 * container, and the host directory they mount into it.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { ExecResult } from "./_container.ts";
import type { Fixture } from "./_fixture.ts";

/** A container that runs busybox applets: a pivoted one, or one that runc runs. */
export interface Runs {
  /**
   * Runs a busybox applet inside.
   *
   * @param args The applet and its arguments.
   * @returns The exit code and output.
   */
  exec(args: string[]): Promise<ExecResult>;
}

/**
 * Runs a busybox applet inside; fails the test if it fails.
 *
 * @param container The container.
 * @param args The applet and its arguments.
 * @returns Its standard output.
 */
export async function inside(container: Runs, args: string[]): Promise<string> {
  const { code, stdout, stderr } = await container.exec(args);
  assert.equal(code, 0, `${args.join(" ")}: ${stderr}`);
  return stdout;
}

/**
 * A host directory, `host-src` in the fixture, with a file owned by 0:0 whose
 * text is its name, `host-src/file`.
 *
 * @param fx The fixture.
 * @returns The directory.
 */
export function hostSource(fx: Fixture): string {
  const dir = fx.mkdir("host-src");
  fx.file("host-src/file", 0, 0);
  return dir;
}
