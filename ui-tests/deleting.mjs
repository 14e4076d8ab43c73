// Deleting tasks and orchestrations from the sidebar and the task view, and the sidebar's
// Connections section, in a real JupyterLab driven in Debian's Chromium by playwright-core;
// tests/test_browser.py (test_deleting_in_chromium) starts the server and makes the tasks.
//
// Configuration: the JSON in BROWSER_TEST_CONFIG (see lab.mjs for url, token, output):
//   doneTask       {id, name, runs}: a run-once task whose run ended, deleted from the sidebar
//   runningTask    {id, name}: a run-once task whose run goes on, deleted from its view
//   deleteOrch     {id, name, tasks, runs, taskName}: an orchestration to delete, with its
//                  counts and the name of one of its tasks
//   connection     {name, type, secret}: a connection made through the API; `secret` is in
//                  its details, which the page must never hold
//   docsShot       where the delete dialog's screenshot for docs/sidebar.md goes (and the
//                  dark theme's, with a run going, as <name>-dark.png)

import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

import {
  api,
  config,
  openLab,
  orchRows,
  request,
  run,
  setTheme,
  sidebar,
  sidebarTab,
  step,
  taskRow,
  until
} from './lab.mjs';

const dialog = '.jp-Dialog';

/** Click the dialog's Delete and wait for it to close. */
async function confirmDelete(page) {
  await page
    .locator(`${dialog} .jp-Dialog-button.jp-mod-warn`, { hasText: 'Delete' })
    .click();
  await page.locator(dialog).waitFor({ state: 'detached' });
}

/** Poll until the server no longer knows the task. */
async function goneFromServer(task) {
  await until(
    `task ${task.name} to be gone from the server`,
    async () => (await request('task/get_by_id', { id: task.id })).status === 404
  );
}

run(async page => {
  const done = config.doneTask;
  const going = config.runningTask;
  const orch = config.deleteOrch;
  const conn = config.connection;

  await step(page, 'connections-listed', async () => {
    // made before the sidebar opens: the section reads the list whenever it is shown
    await api('connections/create', {
      name: conn.name,
      type: conn.type,
      details: { host: 'db.internal', password: conn.secret }
    });
    await openLab(page);
    await sidebarTab(page).click();
    const row = page.locator(`${sidebar} .jp-OrchConnections-row`, {
      hasText: conn.name
    });
    await row.waitFor();
    assert.equal(
      (await row.locator('.jp-OrchConnections-type').textContent()).trim(),
      conn.type
    );
    // its details are never shown, nor kept in the page
    const html = await page.evaluate(() => document.documentElement.outerHTML);
    assert.ok(!html.includes(conn.secret), 'the secret is not in the page');
    assert.ok(!html.includes('db.internal'), 'the details are not in the page');
    // in view: what is drawn at its middle is the row (the section has room of its own)
    assert.ok(
      await row.evaluate(node => {
        const box = node.getBoundingClientRect();
        const hit = document.elementFromPoint(
          box.left + box.width / 2,
          box.top + box.height / 2
        );
        return box.height > 0 && node.contains(hit);
      }),
      'the connection is in view'
    );
  });

  await step(page, 'delete-orchestration-dialog-dark', async () => {
    await setTheme(page, 'JupyterLab Dark', false);
    // a view of one of its tasks is open: it closes with the orchestration
    await taskRow(page, orch.taskName).dblclick();
    await page.locator('.jp-OrchTaskPanel:visible .jp-OrchTaskPanel-name', { hasText: orch.taskName }).waitFor();
    await page.locator(orchRows, { hasText: orch.name }).click({ button: 'right' });
    await page.locator('.lm-Menu-item', { hasText: 'Delete orchestration…' }).click();
    const body = page.locator(`${dialog} .jp-Dialog-body`);
    await body.waitFor();
    assert.match(
      await body.textContent(),
      new RegExp(`^Delete “${orch.name}” with its ${orch.tasks} tasks and ${orch.runs} runs\\?`)
    );
  });

  await step(page, 'orchestration-deleted', async () => {
    await confirmDelete(page);
    await page
      .getByText(`Deleted “${orch.name}” with its ${orch.tasks} tasks and ${orch.runs} runs.`)
      .first()
      .waitFor();
    await page.locator(orchRows, { hasText: orch.name }).waitFor({ state: 'detached' });
    await taskRow(page, orch.taskName).waitFor({ state: 'detached' });
    await page.locator('.jp-OrchTaskPanel-name', { hasText: orch.taskName }).waitFor({ state: 'detached' });
    await setTheme(page, 'JupyterLab Light', true);
  });

  const dialogShot = await step(page, 'delete-task-dialog', async () => {
    // its view is open: deleting the task closes it
    await taskRow(page, done.name).dblclick();
    await page.locator(`#jp-OrchTaskPanel-${done.id}:visible`).waitFor();
    await taskRow(page, done.name).click({ button: 'right' });
    await page.locator('.lm-Menu-item', { hasText: 'Delete task…' }).click();
    await page.locator(dialog).waitFor();
    assert.equal(
      (await page.locator(`${dialog} .jp-Dialog-body`).textContent()).trim(),
      `Delete “${done.name}” with its ${done.runs} run${done.runs === 1 ? '' : 's'}? ` +
        'Its logs and outputs go too. This cannot be undone.'
    );
  });

  await step(page, 'task-deleted-view-closed', async () => {
    await confirmDelete(page);
    await page.getByText(`Deleted “${done.name}” with its ${done.runs} run`).first().waitFor();
    await taskRow(page, done.name).waitFor({ state: 'detached' });
    await page.locator(`#jp-OrchTaskPanel-${done.id}`).waitFor({ state: 'detached' });
    await goneFromServer(done);
  });

  const darkShot = await step(page, 'delete-running-task-from-its-view-dark', async () => {
    await setTheme(page, 'JupyterLab Dark', false);
    await taskRow(page, going.name).dblclick();
    const view = page.locator(`#jp-OrchTaskPanel-${going.id}`);
    await view.locator('.jp-OrchTaskPanel-name', { hasText: going.name }).waitFor();
    await view.locator('.jp-OrchTaskPanel-button', { hasText: 'Delete…' }).click();
    const body = page.locator(`${dialog} .jp-Dialog-body`);
    await body.waitFor();
    assert.match(await body.textContent(), /its run going is stopped first\./);
  });

  await step(page, 'running-task-deleted-dark', async () => {
    await confirmDelete(page);
    await page.getByText('Its run going was stopped.').first().waitFor();
    await page.locator(`#jp-OrchTaskPanel-${going.id}`).waitFor({ state: 'detached' });
    await taskRow(page, going.name).waitFor({ state: 'detached' });
    await goneFromServer(going);
  });

  if (config.docsShot) {
    mkdirSync(dirname(config.docsShot), { recursive: true });
    copyFileSync(dialogShot, config.docsShot);
    copyFileSync(darkShot, config.docsShot.replace(/\.png$/, '-dark.png'));
  }
});
