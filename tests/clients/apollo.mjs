// apollo.mjs - exercise a live GraphQL server the way Apollo Client (core, no React) does.
//
// Usage: node apollo.mjs URL OPS.json
//   OPS.json = {"query": "...", "variables": {...},
//               "mutation": "...", "mutationVariables": {...},
//               "persistedQuery": "...", "persistedVariables": {...}}   (last two optional;
//                                                       default to query/variables)
// Steps, each with fetchPolicy 'no-cache' so every call hits the network:
//   1. query     via plain HttpLink (POST, full query text)
//   2. mutation  via plain HttpLink (POST, full query text)
//   3. persisted query (APQ) via PersistedQueryLink({sha256 from node:crypto,
//      useGETForHashedQueries: true}) -> HttpLink, run twice: the first run sends
//      a hash-only GET (server answers PersistedQueryNotFound) and Apollo retries
//      with a POST carrying query+hash (registration); the second run should be a
//      single hash-only GET answered from the server's APQ store.
// Every HTTP request made by Apollo is recorded through a fetch wrapper.
// Prints ONE JSON line:
//   {"query": data, "mutation": data,
//    "persisted": {"first": data, "second": data},
//    "errors": {"<step>": "message", ...},          (only steps that failed)
//    "requests": [{"step", "method", "path", "operationName", "hasQuery", "hasHash",
//                  "sha256Hash", "status", "contentType", "errorMessages",
//                  "bodySnippet" (start of a non-JSON body, else null)}, ...]}
// Exit 0 when all steps returned without error, 1 when some step failed (JSON still
// printed), 2 when the script itself could not run (bad arguments, unreadable file).
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { ApolloClient, InMemoryCache, HttpLink, ApolloLink, gql } from '@apollo/client';
import { PersistedQueryLink } from '@apollo/client/link/persisted-queries';

const [url, opsPath] = process.argv.slice(2);
if (!url || !opsPath) {
  console.error('usage: node apollo.mjs URL OPS.json');
  process.exit(2);
}
let ops;
try {
  ops = JSON.parse(readFileSync(opsPath, 'utf8'));
} catch (err) {
  console.error(`apollo.mjs: cannot read ${opsPath}: ${err.message}`);
  process.exit(2);
}

const sha256 = (text) => createHash('sha256').update(text, 'utf8').digest('hex');

const requests = [];
let currentStep = 'init';

// fetch wrapper recording what actually went over the wire.
async function recordingFetch(input, init = {}) {
  const reqUrl = new URL(typeof input === 'string' ? input : input.url ?? String(input));
  const method = (init.method ?? 'GET').toUpperCase();
  let payload = {};
  if (method === 'GET') {
    const p = reqUrl.searchParams;
    payload.query = p.get('query') ?? undefined;
    payload.operationName = p.get('operationName') ?? undefined;
    try {
      payload.extensions = p.get('extensions') ? JSON.parse(p.get('extensions')) : undefined;
    } catch {
      payload.extensions = undefined;
    }
  } else if (typeof init.body === 'string') {
    try {
      payload = JSON.parse(init.body);
    } catch {
      payload = {};
    }
  }
  const entry = {
    step: currentStep,
    method,
    path: reqUrl.pathname + (method === 'GET' ? reqUrl.search : ''),
    operationName: payload.operationName ?? null,
    hasQuery: typeof payload.query === 'string' && payload.query.length > 0,
    hasHash: Boolean(payload.extensions?.persistedQuery?.sha256Hash),
    sha256Hash: payload.extensions?.persistedQuery?.sha256Hash ?? null,
    status: null,
    contentType: null,
    errorMessages: [],
    bodySnippet: null,
  };
  requests.push(entry);
  let response;
  try {
    response = await fetch(input, init);
  } catch (err) {
    entry.status = 'network-error';
    entry.errorMessages.push(String(err?.cause?.message ?? err?.message ?? err));
    throw err;
  }
  entry.status = response.status;
  entry.contentType = response.headers.get('content-type');
  const text = await response.clone().text();
  try {
    const body = JSON.parse(text);
    if (Array.isArray(body?.errors)) {
      entry.errorMessages = body.errors.map((e) => e?.message ?? String(e));
    }
  } catch {
    entry.bodySnippet = text.slice(0, 200); // non-JSON body, keep the start for diagnosis
  }
  return response;
}

const httpLink = new HttpLink({ uri: url, fetch: recordingFetch });
const plainClient = new ApolloClient({ link: httpLink, cache: new InMemoryCache() });
const apqClient = new ApolloClient({
  link: ApolloLink.from([
    new PersistedQueryLink({ sha256, useGETForHashedQueries: true }),
    new HttpLink({ uri: url, fetch: recordingFetch }),
  ]),
  cache: new InMemoryCache(),
});

const out = { query: null, mutation: null, persisted: { first: null, second: null }, errors: {} };

function describe(err) {
  if (!err) return null;
  const msgs = err.errors?.map?.((e) => e.message);
  return msgs?.length ? msgs.join('; ') : String(err.message ?? err);
}

async function step(name, fn) {
  currentStep = name;
  try {
    const res = await fn();
    if (res.error) out.errors[name] = describe(res.error);
    return res.data ?? null;
  } catch (err) {
    out.errors[name] = describe(err);
    return null;
  }
}

const q = ops.query ? gql(ops.query) : null;
const m = ops.mutation ? gql(ops.mutation) : null;
const pq = ops.persistedQuery ? gql(ops.persistedQuery) : q;
const pqVars = ops.persistedVariables ?? ops.variables ?? {};

if (q) {
  out.query = await step('query', () =>
    plainClient.query({ query: q, variables: ops.variables ?? {}, fetchPolicy: 'no-cache', errorPolicy: 'all' }),
  );
}
if (m) {
  out.mutation = await step('mutation', () =>
    plainClient.mutate({ mutation: m, variables: ops.mutationVariables ?? {}, fetchPolicy: 'no-cache', errorPolicy: 'all' }),
  );
}
if (pq) {
  out.persisted.first = await step('persisted-1', () =>
    apqClient.query({ query: pq, variables: pqVars, fetchPolicy: 'no-cache', errorPolicy: 'all' }),
  );
  out.persisted.second = await step('persisted-2', () =>
    apqClient.query({ query: pq, variables: pqVars, fetchPolicy: 'no-cache', errorPolicy: 'all' }),
  );
}

out.requests = requests;
process.stdout.write(JSON.stringify(out) + '\n');
process.exit(Object.keys(out.errors).length ? 1 : 0);
