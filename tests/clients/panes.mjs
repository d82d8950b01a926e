// panes.mjs - check GraphiQL's documentation explorer and query history in headless Chromium.
//
// Usage: node panes.mjs URL SCREENSHOT.png QUERY
// Opens GraphiQL, runs QUERY (entered through the CodeMirror API, as browser.mjs does), then
// opens the docs pane (reading the root types it lists) and the history pane (reading its
// entries). Prints ONE JSON line: {"docs": "<docs pane text>", "history": ["label", ...],
// "consoleErrors": [...], "error": "..." (only on failure)} and saves a screenshot of the
// page with the history pane open. Exit 0 on success, 1 on failure, 2 on bad arguments.
// Env: CHROMIUM_PATH (default /usr/bin/chromium), BROWSER_TIMEOUT_MS (default 30000).
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [url, screenshot, query] = process.argv.slice(2);
if (!url || !screenshot || !query) {
  console.error('usage: node panes.mjs URL SCREENSHOT.png QUERY');
  process.exit(2);
}
const timeout = Number(process.env.BROWSER_TIMEOUT_MS || 30000);
const out = { docs: null, history: null, consoleErrors: [] };
const userDataDir = mkdtempSync(join(tmpdir(), 'songbook-chromium-'));
let context;
let page;
let exitCode = 0;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1400, height: 1000 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(timeout);
  page.on('console', (m) => { if (m.type() === 'error') out.consoleErrors.push(m.text().slice(0, 300)); });
  page.on('pageerror', (e) => out.consoleErrors.push(String(e).slice(0, 300)));
  await page.goto(url, { waitUntil: 'domcontentloaded' });
  await page.waitForSelector('.graphiql-query-editor .CodeMirror');
  await page.evaluate((q) => document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setValue(q), query);
  await page.waitForTimeout(500);
  await page.locator('.graphiql-execute-button').click();
  await page.waitForFunction(() => {
    const cm = document.querySelector('.graphiql-response .CodeMirror');
    return cm && cm.CodeMirror.getValue().includes('"data"');
  });

  await page.locator('.graphiql-sidebar button[aria-label="Show Documentation Explorer"]').click();
  const docs = page.locator('.graphiql-doc-explorer');
  await docs.getByText('Root Types').waitFor();
  out.docs = (await docs.innerText()).replace(/\s+/g, ' ').trim();

  await page.locator('.graphiql-sidebar button[aria-label="Show History"]').click();
  await page.locator('.graphiql-history-item').first().waitFor();
  out.history = (await page.locator('.graphiql-history-item-label').allInnerTexts()).map((t) => t.trim());
} catch (err) {
  out.error = String(err?.message ?? err).split('\n')[0];
  exitCode = 1;
} finally {
  if (page) await page.screenshot({ path: screenshot }).catch(() => {});
  if (context) await context.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(out) + '\n');
process.exit(exitCode);
