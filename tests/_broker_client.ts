/**
 * The mount broker's client, as a test runs it in a process of the test
 * user's: asks for a mount, attaches it, and reports what it sees, as one
 * JSON line. Its argument is a `ProbeRequest` (tests/_broker.ts).
 *
 * @module
 */

import { O_DIRECTORY, O_PATH, O_RDONLY } from "../ffi/constants.ts";
import { open, readText } from "../ffi/syscalls.ts";
import { attachMountSource, OwnedFd, requestDirectoryMount, VarlinkError } from "../mod.ts";
import type { ProbeRequest, ProbeResult } from "./_broker.ts";

async function run(request: ProbeRequest): Promise<ProbeResult> {
  const dir = new OwnedFd(open(request.dir, request.opath ? O_PATH : O_RDONLY | O_DIRECTORY));
  try {
    using source = await requestDirectoryMount(dir, {
      socket: request.socket,
      userns: request.userns,
      readOnly: request.readOnly,
      mode: request.mode as "auto",
      as: request.as,
    });
    if (request.attach === undefined) return { ok: true };
    attachMountSource(source, request.attach);
    const files: Record<string, string> = {};
    for (const name of [".", "file"]) {
      const { uid, gid } = Deno.lstatSync(`${request.attach}/${name}`);
      files[name] = `${uid}:${gid}`;
    }
    const line = readText("/proc/self/mountinfo").split("\n")
      .find((l) => l.split(" ")[4] === request.attach);
    let write = "ok";
    try {
      Deno.writeTextFileSync(`${request.attach}/written`, "x");
    } catch (error) {
      write = (error as { code?: string }).code ?? String(error);
    }
    return { ok: true, files, options: line?.split(" ")[5], write };
  } catch (error) {
    if (error instanceof VarlinkError) {
      return { ok: false, error: error.error, parameters: error.parameters };
    }
    return { ok: false, message: String(error) };
  } finally {
    dir.close();
  }
}

console.log(JSON.stringify(await run(JSON.parse(Deno.args[0]))));
