/**
 * `deno task check`'s import-cycle check: reads the static imports
 * (type-only ones included) of `mod.ts`, `lib/`, `ffi/` and `examples/`,
 * and fails, naming each cycle, if any module imports itself through
 * others. It also holds the layering: nothing in `ffi/` imports `lib/`.
 *
 * @module
 */

import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const IMPORT =
  /^\s*(?:import|export)\b[^"';]*?\bfrom\s*["']([^"']+)["']|^\s*import\s*["']([^"']+)["']/gm;

function* modules(path: string): Generator<string> {
  const info = Deno.statSync(path);
  if (info.isFile) {
    if (path.endsWith(".ts")) yield path;
    return;
  }
  for (const entry of Deno.readDirSync(path)) yield* modules(join(path, entry.name));
}

/**
 * The import graph of the given files: each module's relative imports.
 *
 * @param files Absolute paths.
 * @returns For each module, the modules it imports.
 */
export function importGraph(files: string[]): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const text = Deno.readTextFileSync(file);
    const deps: string[] = [];
    for (const match of text.matchAll(IMPORT)) {
      const spec = match[1] ?? match[2];
      if (spec.startsWith(".")) deps.push(resolve(dirname(file), spec));
    }
    graph.set(file, deps);
  }
  return graph;
}

/**
 * The cycles of a graph: its strongly connected components of more than one
 * module, or of one that imports itself (Tarjan's algorithm).
 *
 * @param graph Each module's imports.
 * @returns Each cycle's modules.
 */
export function cycles(graph: Map<string, string[]>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (node: string): void => {
    index.set(node, counter);
    low.set(node, counter++);
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!graph.has(next)) continue;
      if (!index.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node)!, low.get(next)!));
      } else if (onStack.has(next)) {
        low.set(node, Math.min(low.get(node)!, index.get(next)!));
      }
    }
    if (low.get(node) !== index.get(node)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    } while (member !== node);
    if (component.length > 1 || graph.get(node)!.includes(node)) found.push(component.reverse());
  };
  for (const node of graph.keys()) if (!index.has(node)) visit(node);
  return found;
}

if (import.meta.main) {
  const files = ["mod.ts", "lib", "ffi", "examples"].flatMap((p) => [...modules(join(ROOT, p))]);
  const graph = importGraph(files);
  const name = (file: string): string => relative(ROOT, file);
  const problems = cycles(graph).map((cycle) => `import cycle: ${cycle.map(name).join(" -> ")}`);
  for (const [file, deps] of graph) {
    if (!name(file).startsWith("ffi/")) continue;
    for (const dep of deps.filter((d) => !name(d).startsWith("ffi/"))) {
      problems.push(`layering: ${name(file)} imports ${name(dep)}; ffi/ imports nothing above it`);
    }
  }
  for (const problem of problems) console.error(problem);
  if (problems.length > 0) Deno.exit(1);
  console.log(`no import cycle in ${graph.size} modules`);
}
