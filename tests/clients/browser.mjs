// browser.mjs - drive the server's GraphiQL page in headless Chromium like a person would:
// open it, replace the query editor content, press the run button, read the result pane.
//
// Usage: node browser.mjs URL SCREENSHOT.png QUERY
// Prints ONE JSON line:
//   {"result": "<text of the result pane>", "editor": "codemirror5"|"monaco",
//    "setBy": how the query was entered, "editorText": query editor content after entry,
//    "consoleErrors": [...], "failedRequests": [...], "error": "..." (only on failure)}
// and saves a screenshot (also on failure, when the page got that far).
// Exit 0 on success, 1 when the page/editor/result could not be driven, 2 on bad arguments.
// Env: CHROMIUM_PATH (default /usr/bin/chromium), BROWSER_TIMEOUT_MS (default 30000),
//      BROWSER_INPUT=keyboard to skip the CodeMirror API and enter the query the way a
//      user would (select all, paste / type).
// Reading Monaco (GraphiQL 5) editors relies on rendered lines: keep queries and results
// short enough to fit the 1400px-high viewport.
//
// Selectors are GraphiQL's stable class names, shared by GraphiQL 3.x/4.x (CodeMirror 5)
// and 5.x (Monaco): .graphiql-query-editor, .graphiql-execute-button, .graphiql-response.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [url, screenshot, query] = process.argv.slice(2);
if (!url || !screenshot || query === undefined) {
  console.error('usage: node browser.mjs URL SCREENSHOT.png QUERY');
  process.exit(2);
}
const executablePath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const timeout = Number(process.env.BROWSER_TIMEOUT_MS || 30000);
const forceKeyboard = process.env.BROWSER_INPUT === 'keyboard'; // skip the editor-API shortcut

const QUERY_EDITOR = '.graphiql-query-editor';
const RESPONSE = '.graphiql-response';
const RUN_BUTTON = '.graphiql-execute-button';

const norm = (s) => (s ?? '').replace(/\u00a0/g, ' ').replace(/\s+/g, ' ').trim();

const out = { result: null, editor: null, setBy: null, editorText: null, consoleErrors: [], failedRequests: [] };
const userDataDir = mkdtempSync(join(tmpdir(), 'songbook-chromium-'));
let context;
let page;
let exitCode = 0;

// Read the text of an editor (CodeMirror 5 via its API, Monaco via rendered lines).
async function editorText(rootSelector) {
  return page.evaluate((sel) => {
    const root = document.querySelector(sel);
    if (!root) return null;
    const cm = root.querySelector('.CodeMirror');
    if (cm && cm.CodeMirror) return cm.CodeMirror.getValue();
    const monacoEl = root.querySelector('.monaco-editor');
    if (monacoEl) {
      const api = globalThis.monaco?.editor;
      if (api?.getEditors) {
        const ed = api.getEditors().find((e) => monacoEl.contains(e.getDomNode?.()) || e.getDomNode?.() === monacoEl);
        if (ed) return ed.getValue();
      }
      const lines = [...monacoEl.querySelectorAll('.view-lines .view-line')]
        .map((l) => ({ top: parseFloat(l.style.top) || 0, text: l.textContent }))
        .sort((a, b) => a.top - b.top)
        .map((l) => l.text.replace(/\u00a0/g, ' '));
      return lines.join('\n');
    }
    return root.textContent;
  }, rootSelector);
}

// Poll until the query editor shows `want` (whitespace-normalized); Monaco paints lazily.
async function waitForEditorText(want, ms) {
  const end = Date.now() + ms;
  for (;;) {
    if (norm(await editorText(QUERY_EDITOR)) === want) return true;
    if (Date.now() > end) return false;
    await page.waitForTimeout(100);
  }
}

async function focusQueryEditor() {
  const target = page.locator(`${QUERY_EDITOR} .CodeMirror-lines, ${QUERY_EDITOR} .monaco-editor .view-lines`).first();
  await target.click();
}

try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    viewport: { width: 1400, height: 1400 },
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(url).origin }).catch(() => {});
  page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(timeout);
  page.on('console', (m) => { if (m.type() === 'error') out.consoleErrors.push(m.text().slice(0, 300)); });
  page.on('pageerror', (e) => out.consoleErrors.push(String(e).slice(0, 300)));
  page.on('requestfailed', (r) => out.failedRequests.push(`${r.method()} ${r.url()} ${r.failure()?.errorText ?? ''}`));
  page.on('response', (r) => { if (r.status() >= 400) out.failedRequests.push(`${r.request().method()} ${r.url()} HTTP ${r.status()}`); });

  await page.goto(url, { waitUntil: 'domcontentloaded' });
  await page.waitForSelector(`${QUERY_EDITOR} .CodeMirror, ${QUERY_EDITOR} .monaco-editor`, { state: 'visible' });
  out.editor = (await page.$(`${QUERY_EDITOR} .CodeMirror`)) ? 'codemirror5' : 'monaco';
  if (out.editor === 'monaco') {
    // Monaco renders lines asynchronously; wait until the initial content is painted.
    await page.waitForSelector(`${QUERY_EDITOR} .monaco-editor .view-lines .view-line`).catch(() => {});
  }

  // 1) the editor's own API (CodeMirror 5 instance, or a global monaco if exposed)
  out.setBy = forceKeyboard ? null : await page.evaluate(({ sel, q }) => {
    const root = document.querySelector(sel);
    const cm = root.querySelector('.CodeMirror');
    if (cm && cm.CodeMirror) { cm.CodeMirror.setValue(q); return 'codemirror-api'; }
    const monacoEl = root.querySelector('.monaco-editor');
    const api = globalThis.monaco?.editor;
    if (monacoEl && api?.getEditors) {
      const ed = api.getEditors().find((e) => monacoEl.contains(e.getDomNode?.()) || e.getDomNode?.() === monacoEl);
      if (ed) { ed.setValue(q); return 'monaco-api'; }
    }
    return null;
  }, { sel: QUERY_EDITOR, q: query });

  // 2) without an editor API (Monaco in GraphiQL 5): focus, select all, delete, then
  //    paste from the clipboard (paste is not subject to auto-closing brackets or
  //    auto-indent), falling back to inserting the text as one keyboard input event.
  if (!out.setBy) {
    const attempts = [
      ['clipboard', async () => {
        await page.evaluate((q) => navigator.clipboard.writeText(q), query);
        await page.keyboard.press('ControlOrMeta+V');
      }],
      ['keyboard', async () => { await page.keyboard.insertText(query); }],
    ];
    for (const [how, enter] of attempts) {
      try {
        await focusQueryEditor();
        await page.keyboard.press('ControlOrMeta+A');
        await page.keyboard.press('Backspace');
        await enter();
      } catch {
        continue; // e.g. clipboard permission refused
      }
      out.setBy = how;
      if (await waitForEditorText(norm(query), 3000)) break;
    }
  }
  out.editorText = await editorText(QUERY_EDITOR);
  if (norm(out.editorText) !== norm(query)) {
    throw new Error(`query editor holds ${JSON.stringify(out.editorText)} instead of the requested query`);
  }

  // GraphiQL re-parses the query (operation name, documentAST used to route subscriptions
  // to the websocket) in a debounced change handler: let it run before pressing run.
  await page.waitForTimeout(500);

  const before = norm(await editorText(RESPONSE));
  const runButton = page.locator(RUN_BUTTON).first();
  if (await runButton.count()) {
    await runButton.click();
  } else {
    await focusQueryEditor();
    await page.keyboard.press('ControlOrMeta+Enter');
  }

  // Wait until the result pane shows new, non-empty text and it stops changing.
  const deadline = Date.now() + timeout;
  let last = null;
  let stableSince = 0;
  for (;;) {
    const text = await editorText(RESPONSE);
    const spinner = await page.$(`${RESPONSE} .graphiql-spinner`);
    if (text && norm(text) && norm(text) !== before && !spinner) {
      if (text === last) {
        if (Date.now() - stableSince >= 300) break;
      } else {
        last = text;
        stableSince = Date.now();
      }
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for the result pane (last text: ${JSON.stringify(text)})`);
    await page.waitForTimeout(100);
  }
  out.result = last;
} catch (err) {
  out.error = String(err?.message ?? err).split('\n')[0];
  exitCode = 1;
} finally {
  if (page) await page.screenshot({ path: screenshot }).catch((e) => { out.screenshotError = String(e.message ?? e); });
  if (context) await context.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(out) + '\n');
process.exit(exitCode);
