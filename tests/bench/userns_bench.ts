/**
 * `deno task bench`: Handles beside a bare `fcntl` dup and a bare spawn of
 * its helper. Run as root, or rootless under
 * `unshare --user --map-auto --map-root-user --mount`.
 *
 * @module
 */

import { usernsBench } from "./_userns_pairs.ts";
import { register } from "./_register.ts";

register(await usernsBench());
