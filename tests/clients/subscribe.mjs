// subscribe.mjs - run one GraphQL subscription over WebSocket with graphql-ws (the
// graphql-transport-ws protocol, the one GraphiQL and Apollo use) and collect the events.
//
// Usage: node subscribe.mjs ws://127.0.0.1:PORT/graphql 'subscription { ... }' ['{"var": 1}'] [MAX_EVENTS]
// Prints ONE JSON line: {"events": [execution results...], "completed": bool, "error": "..."|null}
// Stops after the server completes the subscription, after MAX_EVENTS events (default 100),
// or after SUBSCRIBE_TIMEOUT_MS (default 10000). Exit 0 when the subscription completed
// or reached MAX_EVENTS without error, 1 otherwise, 2 on bad arguments.
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const [url, query, varsJson, maxArg] = process.argv.slice(2);
if (!url || !query) {
  console.error("usage: node subscribe.mjs WS_URL QUERY ['VARIABLES_JSON'] [MAX_EVENTS]");
  process.exit(2);
}
const variables = varsJson ? JSON.parse(varsJson) : {};
const maxEvents = Number(maxArg || 100);
const timeoutMs = Number(process.env.SUBSCRIBE_TIMEOUT_MS || 10000);

const out = { events: [], completed: false, error: null };
const client = createClient({ url, webSocketImpl: WebSocket, retryAttempts: 0, lazy: true });
const describe = (e) =>
  Array.isArray(e) ? e.map((x) => x?.message ?? String(x)).join('; ')
  : e?.message ?? (e?.code ? `socket closed ${e.code} ${e.reason ?? ''}`.trim() : String(e));

await new Promise((resolve) => {
  const timer = setTimeout(() => { out.error = `timed out after ${timeoutMs} ms`; unsubscribe(); resolve(); }, timeoutMs);
  const unsubscribe = client.subscribe({ query, variables }, {
    next: (result) => {
      out.events.push(result);
      if (out.events.length >= maxEvents) { clearTimeout(timer); unsubscribe(); resolve(); }
    },
    error: (err) => { out.error = describe(err); clearTimeout(timer); resolve(); },
    complete: () => { out.completed = true; clearTimeout(timer); resolve(); },
  });
});
await client.dispose();
process.stdout.write(JSON.stringify(out) + '\n');
process.exit(!out.error && (out.completed || out.events.length >= maxEvents) ? 0 : 1);
