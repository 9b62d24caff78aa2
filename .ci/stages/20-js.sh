#!/usr/bin/env bash
# The browser client as a front-end package (package.json at the top level):
# the generated classic build is up to date with its one source (rohrpost.mjs),
# node's built-in test runner passes (fake WebSocket, both builds), the
# hand-written types pass `tsc --noEmit` against js/typed-usage.*, and the
# tarball `npm pack` makes installs elsewhere and resolves for import and require.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
echo "node $(node --version), npm $(npm --version)"

echo "--- generated files"
node js/build.mjs --check

echo "--- node tests"
node --test tests/js/

echo "--- types (typescript from npm)"
npm install --no-package-lock --no-audit --no-fund --loglevel=error
npx --no-install tsc --version
npx --no-install tsc -p js/tsconfig.json
echo "tsc --noEmit: js/typed-usage.mts and js/typed-usage-require.cts pass"

echo "--- npm pack, installed into a fresh project"
WORK="$(mktemp -d /tmp/rps-npm.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
npm pack --pack-destination "$WORK" --loglevel=error >/dev/null
tarball="$(ls "$WORK"/rohrpost-signals-*.tgz)"
tar -tzf "$tarball" | sort
mkdir "$WORK/app"
(cd "$WORK/app" && npm init -y >/dev/null && npm install --no-audit --no-fund --loglevel=error "$tarball")
cat > "$WORK/app/esm.mjs" <<'JS'
import RohrpostClient, { RohrpostClient as Named, RohrpostError } from "rohrpost-signals";
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const path = (await import("node:url")).fileURLToPath(import.meta.resolve("rohrpost-signals"));
if (!path.endsWith("rohrpost.mjs")) throw new Error(`import resolved to ${path}`);
if (RohrpostClient !== Named || typeof RohrpostError !== "function") throw new Error("bad ES module exports");
const client = new RohrpostClient("ws://example.test/", { autoConnect: false });
if (!(client instanceof EventTarget) || typeof client.on("open", () => {}) !== "function") {
  throw new Error("the ES module build is not the documented client");
}
const cjsPath = require.resolve("rohrpost-signals");
if (!cjsPath.endsWith("rohrpost.js")) throw new Error(`require resolved to ${cjsPath}`);
console.log(`import -> ${path.split("node_modules/")[1]}`);
JS
cat > "$WORK/app/cjs.cjs" <<'JS'
const RohrpostClient = require("rohrpost-signals");
const { RohrpostClient: Named, RohrpostError } = require("rohrpost-signals");
if (RohrpostClient !== Named || RohrpostClient.default !== RohrpostClient || typeof RohrpostError !== "function") {
  throw new Error("bad CommonJS exports");
}
const client = new RohrpostClient("ws://example.test/", { autoConnect: false });
if (typeof client.on("open", () => {}) !== "function") throw new Error("on() must return a function");
console.log(`require -> ${require.resolve("rohrpost-signals").split("node_modules/")[1]}`);
JS
(cd "$WORK/app" && node esm.mjs && node cjs.cjs)
