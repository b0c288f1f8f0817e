// What a process's first call pays: the import, then one plain mountFd of Deno.args[0].
import { mountFd, MS_BIND } from "../../mod.ts";

(await mountFd({ source: Deno.args[0], destination: "/d", flags: MS_BIND })).close();
