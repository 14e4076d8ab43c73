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

import { config, run, sidebar, sidebarTab, step } from './lab.mjs';

const taskNames = `${sidebar} .jp-OrchTaskList .jp-OrchTaskList-name`;

run(
  async page => {
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
      await sidebarTab(page).click();
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
  },
  // the Hub's pages are not the extension's: only its console errors count
  { timeout: 60_000, pageErrorFilter: null }
);
