/**
 * `deno task bench`: mountFd beside the same syscalls made through a bare
 * `Deno.dlopen`. Run as root.
 *
 * @module
 */

import { mountFdBench } from "./_pairs.ts";
import { register } from "./_register.ts";

register(await mountFdBench());
