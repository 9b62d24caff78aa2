// Builds the classic-script client from the one source, the ES module:
//   rohrpost.mjs   -> rohrpost.js    (a <script> that defines window.RohrpostClient,
//                                     and a CommonJS module for require())
//   rohrpost.d.ts  -> rohrpost.d.mts (the same hand-written types for `import`)
// Run `node js/build.mjs` after editing either source; `--check` fails when the
// generated files are not up to date (CI and tests/js run it).
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const STATIC = join(ROOT, "rohrpost_signals", "static", "rohrpost_signals");
const EXPORTS = [
  "export { RohrpostClient, RohrpostError, RohrpostEvent, groupOf, DEFAULTS };",
  "export default RohrpostClient;",
];

function classicScript(source) {
  const lines = source.replace(/\s+$/, "").split("\n");
  const tail = lines.slice(-EXPORTS.length);
  if (tail.join("\n") !== EXPORTS.join("\n")) {
    throw new Error("rohrpost.mjs must end with exactly these lines:\n" + EXPORTS.join("\n"));
  }
  const body = lines.slice(0, -EXPORTS.length);
  const headerEnd = body.indexOf(" */");
  if (body[0] !== "/*" || headerEnd === -1) throw new Error("rohrpost.mjs must start with a /* ... */ comment");
  const header = body.slice(0, headerEnd + 1);
  const code = body.slice(headerEnd + 1).map((line) => (line ? "  " + line : line));
  return [
    "// Generated from rohrpost.mjs by js/build.mjs: edit that file and run `node js/build.mjs`.",
    ...header,
    "(function (root, factory) {",
    '  "use strict";',
    "  var RohrpostClient = factory();",
    '  if (typeof module === "object" && module && module.exports) {',
    "    module.exports = RohrpostClient;",
    "    return;",
    "  }",
    "  root.RohrpostClient = RohrpostClient;",
    "  // <script src=rohrpost.js data-rohrpost-groups=...>: the {% rohrpost_client %} tag.",
    '  var script = typeof document !== "undefined" ? document.currentScript : null;',
    '  if (script && script.hasAttribute("data-rohrpost-groups")) RohrpostClient.fromScript(script);',
    '})(typeof globalThis !== "undefined" ? globalThis : this, function () {',
    '  "use strict";',
    ...code,
    "  return RohrpostClient;",
    "});",
    "",
  ].join("\n");
}

function moduleTypes(types) {
  return "// Generated from rohrpost.d.ts by js/build.mjs (types for the ES module build).\n" + types;
}

const outputs = [
  [join(STATIC, "rohrpost.js"), classicScript(readFileSync(join(STATIC, "rohrpost.mjs"), "utf8"))],
  [join(STATIC, "rohrpost.d.mts"), moduleTypes(readFileSync(join(STATIC, "rohrpost.d.ts"), "utf8"))],
];

const check = process.argv.includes("--check");
let stale = 0;
for (const [path, text] of outputs) {
  let current = null;
  try {
    current = readFileSync(path, "utf8");
  } catch {
    // missing: stale
  }
  if (current === text) continue;
  if (check) {
    console.error(`${relative(ROOT, path)} is out of date: run \`node js/build.mjs\``);
    stale += 1;
  } else {
    writeFileSync(path, text);
    console.log(`wrote ${relative(ROOT, path)}`);
  }
}
if (stale) process.exit(1);
if (check) console.log("generated client files are up to date");
