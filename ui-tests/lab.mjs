// What the browser scripts share: their configuration, Debian's Chromium driven by
// playwright-core (no browser download), the orchestration API, steps with a screenshot
// each, waiting, the theme switch, and JupyterLab's sidebar.
//
// Configuration: the JSON in BROWSER_TEST_CONFIG; every script reads at least
//   chromium   the browser executable
//   output     folder for a screenshot of every step
// and those that talk to the API, url and token (the JupyterLab server, url ends with "/").
//
// Each step prints one line; on a failure the page is saved as NN-step-FAILED.png.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

// playwright-core is a devDependency of the labextension: resolve it from there.
const require = createRequire(
  new URL('../labextension/package.json', import.meta.url)
);
const { chromium } = require('playwright-core');

export const config = JSON.parse(process.env.BROWSER_TEST_CONFIG ?? '{}');
export const API = `${config.url}orch/v1/api`;
export const TIMEOUT = 30_000;

export const sidebar = '.jp-OrchSidebar';
export const taskRows = `${sidebar} .jp-OrchTaskList .jp-OrchRows-row`;
export const orchRows = `${sidebar} .jp-OrchOrchList .jp-OrchRows-row`;

mkdirSync(config.output, { recursive: true });

/** POST to the orchestration API with the server's token: the status and decoded body. */
export async function request(endpoint, body) {
  const response = await fetch(`${API}/${endpoint}`, {
    method: 'POST',
    headers: {
      Authorization: `token ${config.token}`,
      'Content-Type': 'application/json'
    },
    body: JSON.stringify(body ?? {})
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

/** POST to the orchestration API and expect a 2xx answer: its decoded body. */
export async function api(endpoint, body) {
  const answer = await request(endpoint, body);
  assert.ok(
    answer.status >= 200 && answer.status < 300,
    `${endpoint}: ${answer.status} ${JSON.stringify(answer.body)}`
  );
  return answer.body;
}

/** The server's endpoints (its OpenAPI document's paths), to know which steps it allows. */
export async function endpoints() {
  const response = await fetch(`${API}/openapi.json`, {
    headers: { Authorization: `token ${config.token}` }
  });
  const spec = await response.json();
  const prefix = '/orch/v1/api/';
  return new Set(Object.keys(spec.paths).map(path => path.slice(prefix.length)));
}

/** Poll until `check()` is truthy (it may be async), or fail with `what`. */
export async function until(what, check, timeout = TIMEOUT) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await check();
    if (value) {
      return value;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise(resolve => setTimeout(resolve, 200));
  }
}

let stepNumber = 0;

/** How many steps have run. */
export function stepCount() {
  return stepNumber;
}

/** The screenshot of step `number` named `name`. */
export function shotPath(number, name) {
  return join(config.output, `${String(number).padStart(2, '0')}-${name}.png`);
}

/** Run one step; screenshot the page after it (or after its failure): the screenshot. */
export async function step(page, name, body) {
  stepNumber += 1;
  const label = `${String(stepNumber).padStart(2, '0')}-${name}`;
  const started = Date.now();
  try {
    await body();
  } catch (error) {
    await page.screenshot({ path: join(config.output, `${label}-FAILED.png`) });
    console.log(`step ${label}: FAILED after ${Date.now() - started} ms`);
    throw error;
  }
  const path = join(config.output, `${label}.png`);
  await page.screenshot({ path });
  console.log(`step ${label}: ok (${Date.now() - started} ms)`);
  return path;
}

/**
 * Headless Chromium with one page (1440×900, `contextOptions` added) whose default
 * timeout is `timeout`. `pageErrors` collects the extension's console errors and, unless
 * `pageErrorFilter` is null, the page's uncaught errors it keeps.
 */
export async function launch({
  contextOptions = {},
  timeout = TIMEOUT,
  pageErrorFilter = () => true
} = {}) {
  const browser = await chromium.launch({
    executablePath: config.chromium,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync'
    ]
  });
  const context = await browser.newContext({
    viewport: { width: 1440, height: 900 },
    ...contextOptions
  });
  const page = await context.newPage();
  page.setDefaultTimeout(timeout);
  const pageErrors = [];
  if (pageErrorFilter) {
    page.on('pageerror', error => {
      if (pageErrorFilter(error)) {
        pageErrors.push(String(error));
      }
    });
  }
  page.on('console', message => {
    if (
      message.type() === 'error' &&
      /jupyter_orch|jupyter-orch/.test(message.text())
    ) {
      pageErrors.push(message.text());
    }
  });
  return { browser, page, pageErrors };
}

/** JupyterLab of the configured server, logged in with its token, loaded. */
export async function openLab(page) {
  await page.goto(`${config.url}lab?token=${config.token}`);
  await page.waitForSelector('#jupyterlab-splash', { state: 'detached' });
}

/** The left sidebar's Orchestrations tab. */
export function sidebarTab(page) {
  return page.locator('.jp-SideBar.jp-mod-left li[data-id="jp-orch-sidebar"]');
}

/** The sidebar's task row named `name`. */
export function taskRow(page, name) {
  return page
    .locator(taskRows)
    .filter({ has: page.locator('.jp-OrchTaskList-name', { hasText: name }) });
}

/** Switch JupyterLab's theme and let its stylesheet settle before a screenshot. */
export async function setTheme(page, theme, light) {
  await page.evaluate(
    name =>
      window.jupyterapp.commands.execute('apputils:change-theme', {
        theme: name
      }),
    theme
  );
  await page.waitForSelector(`body[data-jp-theme-light="${light}"]`, {
    state: 'attached',
    timeout: TIMEOUT
  });
  await page.waitForTimeout(500);
}

/** Run `main(page)` in a fresh browser, check the page had no errors, and exit. */
export function run(main, launchOptions) {
  const body = async () => {
    const { browser, page, pageErrors } = await launch(launchOptions);
    try {
      await main(page);
      assert.deepEqual(pageErrors, [], 'no errors of the extension in the page');
    } finally {
      if (pageErrors.length) {
        console.log(`page errors: ${pageErrors.join('\n')}`);
      }
      await browser.close();
    }
  };
  body().then(
    () => console.log(`browser steps: ${stepNumber} passed`),
    error => {
      console.error(error);
      process.exit(1);
    }
  );
}
