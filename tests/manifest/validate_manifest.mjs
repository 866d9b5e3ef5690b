// Validate a Teams app manifest against the JSON schema its `$schema` names, offline.
//
//   node tests/manifest/validate_manifest.mjs path/to/manifest.json
//
// Prints {"errors": [...]} (empty when valid) and exits 0 either way: the caller decides.
// The schema is read from the copies bundled in @microsoft/app-manifest; a `$schema` that
// package does not bundle is reported as an error rather than downloaded, so the check
// never needs the network.
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(import.meta.url);
const SCHEMA_HOST = "https://developer.microsoft.com";

function report(errors) {
  process.stdout.write(JSON.stringify({ errors }) + "\n");
}

function parseJson(text) {
  // The bundled schemas use escapes JSON does not know (`\a`, `\v`); the package itself
  // rewrites them the same way before parsing.
  return JSON.parse(text.replace(/^\uFEFF/, "").replace(/\\a/g, "\\u0007").replace(/\\v/g, "\\u000b"));
}

function bundledSchemaPath(schemaUrl, packageDir) {
  let url;
  try {
    url = new URL(schemaUrl);
  } catch {
    return null;
  }
  if (url.origin !== SCHEMA_HOST) return null;
  // developer.microsoft.com also serves the schemas under a locale, e.g. /en-us/json-schemas/...
  const match = url.pathname.match(/^(?:\/[a-z]{2}(?:-[a-z]{2})?)?\/(json-schemas\/teams\/[^?#]+\.json)$/i);
  if (!match || match[1].split("/").includes("..")) return null;
  return path.join(packageDir, "build", match[1]);
}

async function main() {
  const manifestPath = process.argv[2];
  if (!manifestPath) {
    report(["usage: node validate_manifest.mjs <manifest.json>"]);
    return;
  }

  let AppManifestUtils;
  let packageDir;
  try {
    packageDir = path.dirname(require.resolve("@microsoft/app-manifest/package.json"));
    ({ AppManifestUtils } = require("@microsoft/app-manifest"));
  } catch (error) {
    report([`cannot load @microsoft/app-manifest (run \`make node-deps\`): ${error.message}`]);
    return;
  }

  let manifest;
  try {
    manifest = parseJson(await readFile(manifestPath, "utf8"));
  } catch (error) {
    report([`cannot read ${manifestPath} as JSON: ${error.message}`]);
    return;
  }

  const schemaUrl = manifest.$schema;
  if (typeof schemaUrl !== "string") {
    report(["the manifest has no $schema"]);
    return;
  }
  const schemaPath = bundledSchemaPath(schemaUrl, packageDir);
  let schema;
  try {
    if (!schemaPath) throw new Error("not a Teams schema URL");
    schema = parseJson(await readFile(schemaPath, "utf8"));
  } catch (error) {
    report([`$schema ${schemaUrl} is not bundled with @microsoft/app-manifest (${error.message}); not downloading it`]);
    return;
  }

  try {
    report(await AppManifestUtils.validateAgainstSchema(manifest, schema));
  } catch (error) {
    report([`validation failed to run: ${error.message}`]);
  }
}

await main();
