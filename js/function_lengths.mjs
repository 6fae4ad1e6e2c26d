// Fails, naming each one, when a function of the front end's modules (src/attnscope/static/*.js, bundles
// excepted) is longer than the limit: declarations, expressions, methods and arrow functions alike, a nested
// function counting toward the function around it. Views are split into functions that fit on a screen
// (issue 15); `make check-js` runs this. Modules are parsed with acorn (pinned in package.json).
//
//   node js/function_lengths.mjs [--limit 80]
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "acorn";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const STATIC = join(ROOT, "src/attnscope/static");
const at = process.argv.indexOf("--limit");
const LIMIT = at > 0 ? Number(process.argv[at + 1]) : 80;

const FUNCTIONS = new Set(["FunctionDeclaration", "FunctionExpression", "ArrowFunctionExpression"]);

/** A function's name: its own, or the variable, property or method it is assigned to. */
function nameOf(node, parent) {
  if (node.id) return node.id.name;
  if (parent?.type === "VariableDeclarator" && parent.id.type === "Identifier") return parent.id.name;
  if ((parent?.type === "Property" || parent?.type === "MethodDefinition") && parent.key) return parent.key.name ?? parent.key.value;
  return "(anonymous)";
}

/** Every function of one module longer than LIMIT lines: [line, name, length]. */
function longFunctions(file) {
  const tree = parse(readFileSync(file, "utf8"), { ecmaVersion: "latest", sourceType: "module", locations: true });
  const found = [];
  const visit = (node, parent) => {
    if (FUNCTIONS.has(node.type)) {
      const lines = node.loc.end.line - node.loc.start.line + 1;
      if (lines > LIMIT) found.push([node.loc.start.line, nameOf(node, parent), lines]);
    }
    for (const value of Object.values(node)) {
      for (const child of Array.isArray(value) ? value : [value]) {
        if (child && typeof child.type === "string") visit(child, node);
      }
    }
  };
  visit(tree, null);
  return found;
}

const problems = readdirSync(STATIC).filter((f) => f.endsWith(".js")).sort()
  .flatMap((f) => longFunctions(join(STATIC, f)).map(([line, name, n]) => `src/attnscope/static/${f}:${line}: ${name} is ${n} lines (at most ${LIMIT})`));
if (problems.length) {
  console.error(problems.join("\n") + "\nsplit them into functions that fit on a screen");
  process.exit(1);
}
console.log(`src/attnscope/static: every function is at most ${LIMIT} lines`);
