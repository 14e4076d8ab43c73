// The Orchestrations sidebar of a user's JupyterLab under a real JupyterHub whose engine is
// the hub service, driven in Debian's Chromium by playwright-core. tests/test_hub.py starts
// the Hub, makes the tasks this needs, runs this script and checks the result.
//
// Configuration: the JSON in BROWSER_TEST_CONFIG:
//   hub              the Hub's public URL (ends with "/")
//   user, password   who logs in (the dummy authenticator's password)
//   chromium         the browser executable
//   output           folder for a screenshot of every step
//   mine             names of tasks the user owns: each must be listed
//   others           names of other users' tasks: none may be listed
//   engine           the text the sidebar's engine line must show
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

const config = JSON.parse(process.env.BROWSER_TEST_CONFIG ?? '{}');
const TIMEOUT = 60_000;
const sidebar = '.jp-OrchSidebar';
const taskNames = `${sidebar} .jp-OrchTaskList .jp-OrchTaskList-name`;

mkdirSync(config.output, { recursive: true });

let stepNumber = 0;

/** Run one step; screenshot the page after it (or after its failure). */
async function step(page, name, body) {
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
  await page.screenshot({ path: join(config.output, `${label}.png`) });
  console.log(`step ${label}: ok (${Date.now() - started} ms)`);
}

async function main() {
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
  const page = await (
    await browser.newContext({ viewport: { width: 1440, height: 900 } })
  ).newPage();
  page.setDefaultTimeout(TIMEOUT);
  const pageErrors = [];
  page.on('console', message => {
    if (
      message.type() === 'error' &&
      /jupyter_orch|jupyter-orch/.test(message.text())
    ) {
      pageErrors.push(message.text());
    }
  });

  try {
    await step(page, 'hub-login', async () => {
      await page.goto(`${config.hub}hub/login`);
      await page.fill('#username_input', config.user);
      await page.fill('#password_input', config.password);
      await page.click('#login_submit');
      // the Hub sends the user on to their own server's JupyterLab
      await page.waitForURL(new RegExp(`/user/${config.user}/lab`));
      await page.waitForSelector('#jupyterlab-splash', { state: 'detached' });
    });

    await step(page, 'sidebar-names-the-hub-service', async () => {
      await page
        .locator('.jp-SideBar.jp-mod-left li[data-id="jp-orch-sidebar"]')
        .click();
      const engine = page.locator(`${sidebar} .jp-OrchSidebar-engine`);
      await page.waitForFunction(
        ([selector, text]) =>
          document.querySelector(selector)?.textContent === text,
        [`${sidebar} .jp-OrchSidebar-engine`, config.engine]
      );
      assert.equal(await engine.textContent(), config.engine);
    });

    await step(page, 'only-own-tasks-listed', async () => {
      for (const name of config.mine) {
        await page.locator(taskNames, { hasText: name }).first().waitFor();
      }
      const listed = await page.locator(taskNames).allTextContents();
      for (const name of config.others) {
        assert.ok(
          !listed.some(text => text.includes(name)),
          `${name} is another user's task, yet listed: ${listed}`
        );
      }
    });
    assert.deepEqual(pageErrors, []);
  } finally {
    await browser.close();
  }
}

main().catch(error => {
  console.error(error);
  process.exit(1);
});
