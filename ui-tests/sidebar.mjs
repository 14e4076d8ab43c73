// The Orchestrations sidebar in a real JupyterLab, driven in Debian's Chromium by
// playwright-core (no browser download). tests/test_browser.py starts the server, makes
// the tasks this needs, runs this script and checks the server's state afterwards.
//
// Configuration: the JSON in BROWSER_TEST_CONFIG:
//   url, token       the JupyterLab server (url ends with "/")
//   output           folder for a screenshot of every step
//   chromium         the browser executable
//   task             {id, name}: a running task made through the API
//   failingOrch      id of an orchestration whose main.py exits 3
//   folder           a folder of the Jupyter root to package through the context menu
//   manyTasks        how many tasks to add for the responsiveness step (0: skip it)
//   notebook         a notebook of the Jupyter root, empty, for the ipywidgets step
//   widgetTask       the name of the task that step adds (newest, so on the panel's first page)
//   notebookTask     {id, name, runId, text, cell}: a task of a main.ipynb orchestration whose
//                    run (runId) succeeded; its cell printed `text` and displayed an HTML
//                    table whose first cell is `cell` (none: skip the Open output steps)
//
// Each step prints one line; on a failure the page is saved as NN-step-FAILED.png.

import assert from 'node:assert/strict';

import {
  API,
  api,
  config,
  openLab,
  run,
  setTheme,
  sidebar,
  sidebarTab,
  step,
  taskRow,
  taskRows,
  until
} from './lab.mjs';

const runRows = `${sidebar} .jp-OrchRunList .jp-OrchRows-row`;
const logLines = `${sidebar} .jp-OrchLogView-line`;

/**
 * Whether a page error is the one `@jupyter-widgets/jupyterlab-manager` throws for every
 * notebook without a kernel (it reads `sessionContext.session.kernel` once the session is
 * ready, and an output notebook has no session): not the extension's, and nothing follows.
 */
function isWidgetManagerNoKernel(error) {
  return (
    /reading 'kernel'/.test(String(error)) &&
    /jupyter-widgets\/jupyterlab-manager/.test(error.stack ?? '')
  );
}

/** Open output: a notebook run's executed copy, read-only in the main area. */
async function notebookOutputSteps(page) {
  const nb = config.notebookTask;
  const search = page.locator(`${sidebar} .jp-OrchTaskList-search`);
  const button = page.locator(`${sidebar} .jp-OrchLogView-output`);
  const panel = page.locator('.jp-NotebookPanel:visible');

  await step(page, 'notebook-output-offered', async () => {
    await search.fill(nb.name);
    await taskRow(page, nb.name).click();
    await page
      .locator(`${runRows}[aria-selected="true"][data-key="${nb.runId}"]`)
      .waitFor();
    await button.waitFor();
    assert.equal(await button.textContent(), 'Open output');
    // a run of a main.py task has none
    await search.fill(config.task.name);
    await taskRow(page, config.task.name).click();
    await page.locator(`${runRows}[aria-selected="true"]`).waitFor();
    await button.waitFor({ state: 'hidden' });
    await search.fill(nb.name);
    await taskRow(page, nb.name).click();
    await button.waitFor();
  });

  await step(page, 'notebook-output-opened', async () => {
    await button.click();
    await panel
      .locator('.jp-OutputArea-output', { hasText: nb.text })
      .first()
      .waitFor();
    // the HTML output is rendered as a table, not shown as text
    const table = panel.locator('.jp-RenderedHTMLCommon table', {
      hasText: nb.cell
    });
    await table.waitFor();
    assert.match(
      await page
        .locator('.lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current')
        .textContent(),
      new RegExp(`${nb.name} – run ${nb.runId.slice(0, 8)}\\.ipynb`)
    );
    // read-only, as JupyterLab shows a file that is not writable, and no kernel
    await panel
      .locator('.jp-Toolbar-item[data-jp-item-name="read-only-indicator"]')
      .waitFor();
    const state = await page.evaluate(() => {
      const widget = window.jupyterapp.shell.currentWidget;
      return {
        path: widget.context.path,
        writable: widget.context.contentsModel?.writable,
        dirty: widget.context.model.dirty,
        session: widget.context.sessionContext.session
      };
    });
    assert.equal(
      state.path,
      `OrchOutputs:runs/${nb.runId}/${nb.name} – run ${nb.runId.slice(0, 8)}.ipynb`
    );
    assert.equal(state.writable, false);
    assert.equal(state.dirty, false);
    assert.equal(state.session, null);
    await table.scrollIntoViewIfNeeded();
  });

  await step(page, 'notebook-output-dark-theme', async () => {
    await setTheme(page, 'JupyterLab Dark', false);
    await panel.locator('.jp-RenderedHTMLCommon table').first().waitFor();
  });

  await step(page, 'notebook-output-closed', async () => {
    await setTheme(page, 'JupyterLab Light', true);
    // opened again (the command the button runs), the same tab shows its newest copy
    await page.evaluate(() =>
      window.jupyterapp.commands.execute('jupyter-orch:open-output')
    );
    assert.equal(await panel.count(), 1);
    await page.evaluate(() => window.jupyterapp.shell.currentWidget.close());
    await panel.waitFor({ state: 'detached' });
    assert.equal(await page.locator('.jp-Dialog').count(), 0, 'no save prompt');
    await search.fill('');
  });
}

const WIDGET_CELL = 'from jupyter_orch.widgets import TasksPanel\nTasksPanel()';
// the kernel starts, imports the panel, finds the server and lists the tasks
const WIDGET_TIMEOUT = 90_000;

/** The ipywidgets panels in a notebook of the same page: `TasksPanel()` in a cell. */
async function widgetSteps(page) {
  const output = page.locator(
    '.jp-NotebookPanel:visible .jp-Cell .jp-OutputArea'
  );

  await step(page, 'notebook-opens', async () => {
    await api('task/run_scheduled', {
      orch_id: config.failingOrch,
      workspace_id: 1,
      name: config.widgetTask,
      schedule: '0 0 1 1 *'
    });
    // the notebook takes the width the sidebar had
    await page.evaluate(() => window.jupyterapp.shell.collapseLeft());
    await page.evaluate(async path => {
      await window.jupyterapp.commands.execute('docmanager:open', { path });
    }, config.notebook);
    await page
      .locator('.jp-NotebookPanel:visible .jp-Cell .cm-content')
      .waitFor();
    await until(
      'the notebook kernel to be idle',
      () =>
        page.evaluate(
          () =>
            window.jupyterapp.shell.currentWidget?.sessionContext?.session
              ?.kernel?.status === 'idle'
        ),
      WIDGET_TIMEOUT
    );
  });

  await step(page, 'widget-cell-typed', async () => {
    await page
      .locator('.jp-NotebookPanel:visible .jp-Cell .cm-content')
      .first()
      .click();
    await page.keyboard.type(WIDGET_CELL);
    const source = await page.evaluate(() =>
      window.jupyterapp.shell.currentWidget.content.activeCell.model.sharedModel.getSource()
    );
    // the editor closes brackets and indents by itself: what it holds is the cell exactly
    assert.equal(source, WIDGET_CELL);
  });

  await step(page, 'tasks-panel-rendered', async () => {
    await page.keyboard.press('Shift+Enter');
    const table = output.locator('.jupyter-widgets table', {
      hasText: config.widgetTask
    });
    await table.first().waitFor({ timeout: WIDGET_TIMEOUT });
    // the cell at the top: the code, the panel's toolbar and its first rows
    await output
      .first()
      .evaluate(node =>
        node.closest('.jp-Cell').scrollIntoView({ block: 'start' })
      );
    const text = await output.first().textContent();
    assert.doesNotMatch(
      text,
      /Error displaying widget|Traceback|refresh failed/
    );
    assert.match(text, /\d[\d,]* tasks/, 'the toolbar counts the tasks');
    assert.equal(
      await output
        .locator('[data-mime-type="application/vnd.jupyter.stderr"]')
        .count(),
      0,
      'nothing on stderr'
    );
  });

  await step(page, 'tasks-panel-row-clicked', async () => {
    // a click on a row selects its task: the row is marked and the task's heading shows
    const row = output.locator('.jupyter-widgets tr[data-id]', {
      hasText: config.widgetTask
    });
    await row.first().click();
    await until(
      'the clicked row to be selected',
      async () =>
        /background/.test((await row.first().getAttribute('style')) ?? ''),
      WIDGET_TIMEOUT
    );
    await until(
      'the selected task to be shown under the table',
      async () =>
        !(await output.first().textContent()).includes('Select a task to see its runs'),
      WIDGET_TIMEOUT
    );
  });
}

run(
  async page => {
    await step(page, 'lab-opens', async () => {
      await openLab(page);
      await page.waitForSelector('.jp-SideBar.jp-mod-left .lm-TabBar-tab');
    });

    await step(page, 'sidebar-opens', async () => {
      const tab = sidebarTab(page);
      assert.equal(await tab.getAttribute('title'), 'Orchestrations');
      await tab.click();
      await page.waitForSelector(`${sidebar} .jp-OrchSidebar-title`);
      assert.equal(
        await page.locator(`${sidebar} .jp-OrchSidebar-title`).textContent(),
        'Orchestrations'
      );
    });

    await step(page, 'task-from-api-listed', async () => {
      const row = taskRow(page, config.task.name);
      await row.waitFor();
      const text = await row.textContent();
      assert.match(text, /once/);
      // the status bar counts it while its run goes on
      await until('the status bar to count the running task', async () =>
        /^[1-9]\d* running$/.test(
          (await page.locator('.jp-OrchRunningStatus-text').textContent()) ?? ''
        )
      );
    });

    await step(page, 'task-selected-log-shown', async () => {
      await taskRow(page, config.task.name).click();
      await page.locator(runRows).first().waitFor();
      assert.equal(
        await page.locator(`${runRows}[aria-selected="true"]`).count(),
        1,
        'the newest run is selected'
      );
      await page
        .locator(logLines, { hasText: 'hello from the browser test' })
        .waitFor();
      // the log is live: a later line arrives while we look
      // (on a busy machine "tick 30" may be there too)
      await page.locator(logLines, { hasText: /tick 3$/ }).first().waitFor();
      await page.locator(`${sidebar} .jp-OrchLogView-live`).waitFor();
    });

    await step(page, 'dark-theme', async () => {
      await setTheme(page, 'JupyterLab Dark', false);
    });

    await step(page, 'kill-dialog', async () => {
      await setTheme(page, 'JupyterLab Light', true);
      await page
        .locator(`${sidebar} [data-command="jupyter-orch:kill"]`)
        .click();
      const dialog = page.locator('.jp-Dialog');
      await dialog.waitFor();
      assert.match(await dialog.textContent(), new RegExp(config.task.name));
    });

    await step(page, 'task-killed', async () => {
      await page
        .locator('.jp-Dialog .jp-Dialog-button.jp-mod-warn', {
          hasText: 'Kill'
        })
        .click();
      await page.locator('.jp-Dialog').waitFor({ state: 'detached' });
      await until('the task to be killed', async () => {
        const task = await api('task/get_by_id', { id: config.task.id });
        return task.status === 'killed';
      });
      // killed tasks are hidden by default; the toggle shows them again
      await taskRow(page, config.task.name).waitFor({ state: 'detached' });
      await page.locator(`${sidebar} .jp-OrchTaskList-hideKilled input`).uncheck();
      await taskRow(page, config.task.name)
        .locator('.jp-OrchBadge[data-status="killed"]')
        .first()
        .waitFor();
      // its log stays readable after the kill
      await page
        .locator(logLines, { hasText: 'hello from the browser test' })
        .waitFor();
    });

    await step(page, 'keyboard', async () => {
      const list = page.locator(`${sidebar} .jp-OrchTaskList .jp-OrchRows`);
      await list.focus();
      await page.keyboard.press('Home');
      const first = page.locator(`${taskRows}[aria-selected="true"]`);
      await first.waitFor();
      assert.equal(await first.getAttribute('aria-posinset'), '1');
    });

    await step(page, 'context-menu', async () => {
      await page
        .locator('.jp-SideBar.jp-mod-left li[data-id="filebrowser"]')
        .click();
      const item = page.locator('.jp-DirListing-item', {
        has: page.locator('.jp-DirListing-itemText', { hasText: config.folder })
      });
      await item.click({ button: 'right' });
      await page
        .locator('.lm-Menu-item', { hasText: 'Create orchestration' })
        .waitFor();
    });

    await step(page, 'create-dialog-schedule-preview', async () => {
      await page
        .locator('.lm-Menu-item', { hasText: 'Create orchestration' })
        .click();
      const dialog = page.locator('.jp-Dialog .jp-OrchCreateDialog');
      await dialog.waitFor();
      await dialog.locator('input[type="radio"][value="scheduled"]').check();
      const preview = dialog.locator('.jp-OrchCreateDialog-preview');
      assert.equal(await preview.textContent(), 'every 5 minutes');
      await dialog.locator('input[name="schedule"]').fill('*/2 * * * * *');
      assert.equal(await preview.textContent(), 'every 2 seconds');
      await dialog.locator('input[name="timezone"]').fill('UTC');
      await dialog.locator('textarea[name="args"]').fill('{"name": "browser"}');
      await dialog.locator('input[name="timeout"]').fill('60');
    });

    await step(page, 'orchestration-created', async () => {
      await page
        .locator('.jp-Dialog .jp-Dialog-button.jp-mod-accept', {
          hasText: 'Create task'
        })
        .click();
      await page.locator('.jp-Dialog').waitFor({ state: 'detached' });
      const row = page.locator(`${taskRows}[aria-selected="true"]`, {
        hasText: config.folder
      });
      await row.waitFor();
      assert.match(await row.textContent(), /every 2 seconds/);
      await page
        .locator(`${sidebar} .jp-OrchOrchList .jp-OrchRows-row`, {
          hasText: config.folder
        })
        .locator('.jp-OrchBadge[data-status="ready"]')
        .waitFor();
      await page
        .locator(logLines, { hasText: 'hello, browser' })
        .first()
        .waitFor();
    });

    await step(page, 'failure-notification', async () => {
      await api('task/run_once', {
        orch_id: config.failingOrch,
        workspace_id: 1,
        name: 'doomed'
      });
      const toast = page.locator('.Toastify__toast', { hasText: 'doomed' });
      await toast.waitFor();
      assert.match(await toast.textContent(), /a run failed/);
      await toast
        .locator('.jp-toast-button', { hasText: 'Open log' })
        .waitFor();
      await page.waitForTimeout(800); // the toast slides in
    });

    await step(page, 'failure-log-opened', async () => {
      await page
        .locator('.Toastify__toast', { hasText: 'doomed' })
        .locator('.jp-toast-button', { hasText: 'Open log' })
        .click();
      await page
        .locator(`${taskRows}[aria-selected="true"]`, { hasText: 'doomed' })
        .waitFor();
      await page.locator(logLines, { hasText: 'about to fail' }).waitFor();
      await page
        .locator(
          `${sidebar} .jp-OrchLogView-header .jp-OrchBadge[data-status="failure"]`
        )
        .waitFor();
      // and the task's view in the main area, at the same run
      await page
        .locator('.jp-OrchTaskPanel:visible .jp-OrchLogPane-line', {
          hasText: 'about to fail'
        })
        .waitFor();
    });

    await step(page, 'dark-theme-dialog', async () => {
      await setTheme(page, 'JupyterLab Dark', false);
      await page
        .locator(`${sidebar} [data-command="jupyter-orch:kill"]`)
        .click();
      await page.locator('.jp-Dialog').waitFor();
    });

    await step(page, 'dark-theme-dialog-cancelled', async () => {
      await page
        .locator('.jp-Dialog .jp-Dialog-button', { hasText: 'Cancel' })
        .click();
      await page.locator('.jp-Dialog').waitFor({ state: 'detached' });
      await setTheme(page, 'JupyterLab Light', true);
    });

    await step(page, 'failure-notification-sidebar-closed', async () => {
      // closed, the sidebar polls only task/activity: failures are still announced
      const tab = sidebarTab(page);
      await tab.click();
      await page.locator(sidebar).waitFor({ state: 'hidden' });
      await api('task/run_once', {
        orch_id: config.failingOrch,
        workspace_id: 1,
        name: 'unwatched'
      });
      const toast = page.locator('.Toastify__toast', { hasText: 'unwatched' });
      await toast.waitFor({ timeout: 60000 });
      assert.match(await toast.textContent(), /a run failed/);
      await tab.click();
      await taskRow(page, 'unwatched').waitFor();
    });

    if (config.notebookTask) {
      await notebookOutputSteps(page);
    }

    if (config.manyTasks > 0) {
      const made = [];
      const total = config.manyTasks;
      const more = `${sidebar} .jp-OrchTaskList-more`;
      /** How many tasks the list holds (its rows' aria-setsize). */
      const listed = () =>
        page.evaluate(() =>
          Number(
            document
              .querySelector('.jp-OrchTaskList .jp-OrchRows-row[aria-setsize]')
              ?.getAttribute('aria-setsize') ?? 0
          )
        );

      await step(page, 'many-tasks-first-page', async () => {
        const orch = config.failingOrch;
        for (let i = 0; i < config.manyTasks; i += 25) {
          const batch = [];
          for (let j = i; j < Math.min(config.manyTasks, i + 25); j++) {
            batch.push(
              api('task/run_scheduled', {
                orch_id: orch,
                workspace_id: 1,
                name: `bulk-${String(j).padStart(4, '0')}`,
                schedule: '0 0 1 1 *'
              })
            );
          }
          made.push(...(await Promise.all(batch)));
        }
        // the newest page only, and a bar to load more; it is the page of a poll made after
        // the last task (tasks made after a poll come at the top with the next one)
        const [newest] = await api('task/list', { limit: 1, run_limit: 0 });
        const firstListed = () =>
          page.evaluate(() => {
            const list = document.querySelector(
              '.jp-OrchTaskList .jp-OrchRows'
            );
            list.scrollTop = 0;
            const first = list.querySelector(
              '.jp-OrchRows-row[aria-posinset="1"] .jp-OrchTaskList-name'
            );
            return first?.textContent ?? null;
          });
        await until(
          'the newest page of tasks to be listed',
          async () =>
            (await listed()) === 100 &&
            (await page.locator(more).isVisible()) &&
            (await firstListed()) === newest.name
        );
        assert.equal(
          await page
            .locator(`${more} .jp-OrchTaskList-orchLabel`)
            .textContent(),
          'The newest 100 tasks'
        );
      });

      await step(page, 'many-tasks', async () => {
        // "Load more" fetches the next page
        await page.locator(`${more} .jp-OrchTaskList-loadMore`).click();
        await until('a second page', async () => (await listed()) === 200);
        // scrolling to the end fetches the next, until every task is listed
        let pages = 2;
        while (await page.locator(more).isVisible()) {
          const before = await listed();
          await page.evaluate(() => {
            const list = document.querySelector(
              '.jp-OrchTaskList .jp-OrchRows'
            );
            list.scrollTop = list.scrollHeight;
          });
          await until(
            'the next page on scrolling to the end',
            async () =>
              (await listed()) > before ||
              !(await page.locator(more).isVisible())
          );
          pages += 1;
          assert.ok(pages <= total / 100 + 3, `too many pages (${pages})`);
        }
        assert.ok((await listed()) >= total, 'every task is listed');
        assert.ok(
          await page.evaluate(
            () =>
              document.querySelectorAll('.jp-OrchTaskList .jp-OrchRows-row')
                .length < 100
          ),
          'only the rows in view are built'
        );
        // scroll to the end and back, then filter: the rows in the DOM stay a screenful
        const timings = await page.evaluate(async () => {
          const list = document.querySelector('.jp-OrchTaskList .jp-OrchRows');
          const frame = () =>
            new Promise(resolve => requestAnimationFrame(resolve));
          const t0 = performance.now();
          list.scrollTop = list.scrollHeight;
          await frame();
          await frame();
          const t1 = performance.now();
          const rows = list.querySelectorAll('.jp-OrchRows-row').length;
          const last = list
            .querySelector('.jp-OrchRows-row:last-child')
            ?.getAttribute('aria-posinset');
          return {
            scrollMs: t1 - t0,
            rows,
            last,
            setsize: list
              .querySelector('.jp-OrchRows-row')
              .getAttribute('aria-setsize')
          };
        });
        assert.ok(
          timings.rows < 100,
          `only the rows in view are built (${timings.rows})`
        );
        assert.equal(
          timings.last,
          timings.setsize,
          'the last row is reachable'
        );
        // filtering a thousand tasks is done before the next frame
        const filterMs = await page.evaluate(() => {
          const search = document.querySelector('.jp-OrchTaskList-search');
          const t0 = performance.now();
          search.value = 'bulk-0999';
          search.dispatchEvent(new Event('input'));
          return performance.now() - t0;
        });
        await taskRow(page, 'bulk-0999').waitFor();
        const search = page.locator(`${sidebar} .jp-OrchTaskList-search`);
        // the page stays responsive while the model polls the long list
        const longest = await page.evaluate(
          () =>
            new Promise(resolve => {
              let worst = 0;
              const observer = new PerformanceObserver(list => {
                for (const entry of list.getEntries()) {
                  worst = Math.max(worst, entry.duration);
                }
              });
              observer.observe({ type: 'longtask', buffered: false });
              setTimeout(() => {
                observer.disconnect();
                resolve(worst);
              }, 7000);
            })
        );
        /** The size and time of a task/list answer. */
        const measure = async body => {
          const started = Date.now();
          const text = await fetch(`${API}/task/list`, {
            method: 'POST',
            headers: { Authorization: `token ${config.token}` },
            body: JSON.stringify(body)
          }).then(r => r.text());
          return `${Math.round(text.length / 1024)} KiB in ${Date.now() - started} ms`;
        };
        const firstPage = await measure({ run_limit: 1, limit: 100 });
        const whole = await measure({ run_limit: 1 });
        console.log(
          `  task/list: the first page (a poll of the newest 100) ${firstPage}, ` +
            `every task ${whole}; ${made.length} tasks added, listed in ${pages} pages: ` +
            `scroll to end ${timings.scrollMs.toFixed(0)} ms, ` +
            `${timings.rows} rows in the DOM, filter ${filterMs.toFixed(1)} ms, ` +
            `longest main-thread task while polling ${longest.toFixed(0)} ms`
        );
        await search.fill('');
      });
    }

    if (config.notebook) {
      await widgetSteps(page);
    }
  },
  { pageErrorFilter: error => !isWidgetManagerNoKernel(error) }
);
