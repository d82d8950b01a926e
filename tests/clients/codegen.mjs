// codegen.mjs - check that client operation documents validate against the server
// schema, the way GraphQL Code Generator (used by typed frontends) sees them, and
// produce TypeScript types for them (plugins: typescript + typescript-operations).
//
// Usage: node codegen.mjs SCHEMA DOCSGLOB OUTFILE
//   SCHEMA    path to the SDL file (e.g. /work/main/schema.graphql) or a URL
//   DOCSGLOB  glob of operation documents (e.g. '/work/main/tests/operations/*.graphql';
//             quote it so the shell does not expand it)
//   OUTFILE   where to write the generated .ts (use a temp folder)
// Env fallbacks: CODEGEN_SCHEMA, CODEGEN_DOCUMENTS, CODEGEN_OUTFILE.
// Prints ONE JSON line: {"ok": true, "outfile": ..., "bytes": n} on success, or
// {"ok": false, "error": "..."} on failure (also written to stderr).
// Exit 0 on success; 1 when generation fails (invalid documents, unknown fields,
// no documents matched, schema unreadable); 2 on bad arguments.
import { generate } from '@graphql-codegen/cli';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { statSync } from 'node:fs';

const here = dirname(fileURLToPath(import.meta.url));
const [schemaArg, docsArg, outArg] = process.argv.slice(2);
const schema = schemaArg ?? process.env.CODEGEN_SCHEMA;
const documents = docsArg ?? process.env.CODEGEN_DOCUMENTS;
const outfile = outArg ?? process.env.CODEGEN_OUTFILE;
if (!schema || !documents || !outfile) {
  console.error('usage: node codegen.mjs SCHEMA DOCSGLOB OUTFILE');
  process.exit(2);
}
const outPath = resolve(outfile);

function flatten(err) {
  // Codegen wraps failures in AggregateError / listr errors; collect every message.
  const msgs = [];
  const seen = new Set();
  const walk = (e) => {
    if (!e || seen.has(e)) return;
    seen.add(e);
    if (Array.isArray(e.errors)) e.errors.forEach(walk);
    if (e.message) msgs.push(String(e.message));
    if (e.details) msgs.push(String(e.details));
    if (e.cause) walk(e.cause);
  };
  walk(err);
  return [...new Set(msgs)].join('\n') || String(err);
}

try {
  await generate(
    {
      cwd: here, // plugins are resolved from this folder's node_modules
      schema,
      documents,
      silent: true,
      errorsOnly: true,
      ignoreNoDocuments: false,
      generates: {
        [outPath]: {
          plugins: ['typescript', 'typescript-operations'],
        },
      },
    },
    true,
  );
  process.stdout.write(JSON.stringify({ ok: true, outfile: outPath, bytes: statSync(outPath).size }) + '\n');
  process.exit(0);
} catch (err) {
  const error = flatten(err);
  console.error(error);
  process.stdout.write(JSON.stringify({ ok: false, error }) + '\n');
  process.exit(1);
}
