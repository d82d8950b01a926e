// audit.mjs - GraphQL-over-HTTP spec conformance audit of a live server.
//
// Runs graphql-http's server audit (auditServer, the exported name of what its
// README calls the server audit) against URL and prints ONE JSON line:
//   {"ok": n, "notice": n, "warn": n, "error": n, "total": n,
//    "results": [{"id", "name", "status", "reason", "httpStatus"}, ...]}
// "results" lists every result whose status is not "ok".
// Exit code 0 whenever the audit ran (the Python test asserts on the numbers);
// exit code 2 when it could not run (bad arguments, server unreachable, crash).
//
// Usage: node audit.mjs http://127.0.0.1:PORT/graphql
import { auditServer } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs URL');
  process.exit(2);
}

try {
  // Fail fast with a clear message when nothing is listening.
  await fetch(url, { method: 'GET' });
} catch (err) {
  console.error(`audit.mjs: cannot reach ${url}: ${err?.cause?.message ?? err}`);
  process.exit(2);
}

try {
  const results = await auditServer({ url, fetchFn: fetch });
  const counts = { ok: 0, notice: 0, warn: 0, error: 0 };
  const failures = [];
  for (const r of results) {
    counts[r.status] = (counts[r.status] ?? 0) + 1;
    if (r.status !== 'ok') {
      failures.push({
        id: r.id,
        name: r.name,
        status: r.status,
        reason: r.reason,
        httpStatus: r.response?.status ?? null,
      });
    }
  }
  process.stdout.write(
    JSON.stringify({ ...counts, total: results.length, results: failures }) + '\n',
  );
  process.exit(0);
} catch (err) {
  console.error(`audit.mjs: audit failed to run: ${err?.stack ?? err}`);
  process.exit(2);
}
