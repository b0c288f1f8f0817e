/**
 * Run by permissions_test.ts under restricted flags: imports the module, makes
 * one call, and prints what came of it as JSON.
 */

import {
  getUserNamespaceMappings,
  Handles,
  mountFd,
  mountInto,
  MS_BIND,
  openMountNamespace,
} from "../mod.ts";

const [call, source] = Deno.args;
const mapping = {
  uidMappings: [{ containerID: 0, hostID: 10000, size: 10 }],
  gidMappings: [{ containerID: 0, hostID: 10000, size: 10 }],
};
try {
  if (call === "import") {
    // The import itself needs no permission.
  } else if (call === "plain") {
    (await mountFd({ source, destination: "/d", flags: MS_BIND })).close();
  } else if (call === "idmapped") {
    (await mountFd({ source, destination: "/d", flags: MS_BIND, idMapping: mapping })).close();
  } else if (call === "get") {
    using handles = new Handles();
    (await handles.get(mapping)).close();
  } else if (call === "mappings") {
    await getUserNamespaceMappings(source);
  } else if (call === "into") {
    await mountInto({ source, destination: "/d", flags: MS_BIND }, source);
  } else if (call === "namespace") {
    await (await openMountNamespace("/proc/self/ns/mnt")).close();
  }
  console.log(JSON.stringify({ ok: true }));
} catch (error) {
  const { name, message } = error as Error;
  console.log(
    JSON.stringify({ name, message, notCapable: error instanceof Deno.errors.NotCapable }),
  );
}
