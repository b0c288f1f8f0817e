/**
 * The module as its users meet it: imported by URL, with no import map, and
 * with only relative `.ts` specifiers in what it ships.
 */

import assert from "node:assert/strict";
import { dirname, extname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));

function* sources(dir: string): Generator<string> {
  for (const entry of Deno.readDirSync(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) yield* sources(path);
    else if (extname(entry.name) === ".ts") yield path;
  }
}

/** Every module specifier in a file: static and dynamic imports and re-exports. */
function specifiers(text: string): string[] {
  const found: string[] = [];
  const patterns = [
    /^\s*(?:import|export)\b[^'"]*?\bfrom\s*["']([^"']+)["']/gm,
    /^\s*import\s*["']([^"']+)["']/gm,
    /\bimport\(\s*["']([^"']+)["']\s*\)/g,
  ];
  for (const pattern of patterns) {
    for (const match of text.matchAll(pattern)) found.push(match[1]);
  }
  return found;
}

Deno.test("mod.ts, lib/ and ffi/ use only relative .ts specifiers", () => {
  const files = [
    join(ROOT, "mod.ts"),
    ...sources(join(ROOT, "lib")),
    ...sources(join(ROOT, "ffi")),
  ];
  const bad: string[] = [];
  let count = 0;
  for (const file of files) {
    // Drop comments first: doc examples import "../mod.ts" and are not code.
    const code = Deno.readTextFileSync(file).replace(/\/\*[\s\S]*?\*\//g, "").replace(
      /\/\/.*$/gm,
      "",
    );
    for (const specifier of specifiers(code)) {
      count++;
      if (!/^\.\.?\/.*\.ts$/.test(specifier)) bad.push(`${relative(ROOT, file)}: ${specifier}`);
    }
  }
  assert.deepEqual(bad, [], "bare, remote or extensionless specifiers");
  assert.ok(count > 20, `found ${count} specifiers`);
  assert.deepEqual(specifiers(`import { a } from "jsr:@std/path";\nexport * from "./x.ts";`), [
    "jsr:@std/path",
    "./x.ts",
  ]);
});

Deno.test("the module imports by URL from a plain directory, and makes a mount source", async () => {
  const controller = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: controller.signal, onListen(): void {} },
    async (request) => {
      const path = join(ROOT, decodeURIComponent(new URL(request.url).pathname));
      if (!path.startsWith(ROOT + "/")) return new Response("no", { status: 403 });
      try {
        return new Response(await Deno.readFile(path), {
          headers: { "content-type": "application/typescript" },
        });
      } catch {
        return new Response("not found", { status: 404 });
      }
    },
  );
  const host = `127.0.0.1:${server.addr.port}`;
  const dir = Deno.makeTempDirSync({ prefix: "mountfd-url-" });
  try {
    Deno.writeTextFileSync(
      join(dir, "main.ts"),
      `import { mountFd, MS_BIND } from "http://${host}/mod.ts";\n` +
        `using source = await mountFd({ source: "/", destination: "/d", flags: MS_BIND });\n` +
        `console.log(source.type, source.fd > 2);\n`,
    );
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", `--allow-import=${host}`, "--allow-ffi", "main.ts"],
      cwd: dir,
      env: { DENO_DIR: join(dir, "cache"), NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(code, 0, new TextDecoder().decode(stderr));
    assert.equal(new TextDecoder().decode(stdout), "plain-open true\n");
    assert.equal(Deno.statSync(dir).isDirectory, true);
    assert.throws(() => Deno.statSync(join(dir, "deno.json")), Deno.errors.NotFound);
  } finally {
    controller.abort();
    await server.finished;
    Deno.removeSync(dir, { recursive: true });
  }
});
