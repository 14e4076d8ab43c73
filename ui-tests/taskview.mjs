// The main-area view of a task, the sidebar's sparklines and the create form's schedule
// field, in a real JupyterLab driven in Debian's Chromium by
// playwright-core; tests/test_browser.py (test_task_view_in_chromium) starts the server and
// makes the tasks.
//
// Configuration: the JSON in BROWSER_TEST_CONFIG:
//   url, token     the JupyterLab server (url ends with "/")
//   output         folder for a screenshot of every step
//   chromium       the browser executable
//   task           {id, name, orchId}: a scheduled task (Europe/Paris) with a few finished runs
//   longTask       {id, name}: a run-once task whose run goes on
//   onceTask       {id, name, orchId}: a run-once task whose run ended
//   docsShot       where the view's screenshot for docs/sidebar.md goes
//
// Each step prints one line; on a failure the page is saved as NN-step-FAILED.png.

import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';

import {
  api,
  endpoints,
  config,
  openLab,
  run,
  setTheme,
  shotPath,
  sidebar,
  sidebarTab,
  step,
  stepCount,
  taskRow,
  taskRows,
  until
} from './lab.mjs';

const ZONE = 'America/New_York';
const view = '.jp-OrchTaskPanel';

/**
 * Every visible badge's contrast (WCAG 2 relative luminance of its text against the first
 * opaque background behind it, alpha composited) and font size, in the page.
 */
function badgeContrasts(page, selector) {
  return page.evaluate(sel => {
    const parse = text => {
      const m = /rgba?\(([^)]+)\)/.exec(text);
      const [r, g, b, a = 1] = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
      return [r, g, b, a];
    };
    const over = (top, bottom) => {
      const a = top[3];
      return [0, 1, 2].map(i => top[i] * a + bottom[i] * (1 - a)).concat(1);
    };
    const background = node => {
      const layers = [];
      for (let n = node; n; n = n.parentElement) {
        const c = parse(getComputedStyle(n).backgroundColor);
        if (c[3] > 0) {
          layers.push(c);
          if (c[3] === 1) {
            break;
          }
        }
      }
      let color = [255, 255, 255, 1];
      for (const layer of layers.reverse()) {
        color = over(layer, color);
      }
      return color;
    };
    const luminance = ([r, g, b]) => {
      const f = v => {
        const s = v / 255;
        return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
      };
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    return [...document.querySelectorAll(sel)]
      .filter(n => n.offsetParent !== null)
      .map(n => {
        const style = getComputedStyle(n);
        const back = background(n);
        const fore = over(parse(style.color), back);
        const [hi, lo] = [luminance(fore), luminance(back)].sort((a, b) => b - a);
        return {
          text: n.textContent,
          ratio: (hi + 0.05) / (lo + 0.05),
          size: parseFloat(style.fontSize)
        };
      });
  }, selector);
}

async function checkBadges(page, where) {
  const badges = await badgeContrasts(page, '.jp-OrchBadge');
  assert.ok(badges.length > 0, `badges shown ${where}`);
  for (const b of badges) {
    assert.ok(b.ratio >= 4.5, `badge "${b.text}" ${where}: contrast ${b.ratio.toFixed(2)}:1`);
    assert.ok(b.size >= 11, `badge "${b.text}" ${where}: ${b.size}px text`);
  }
  const worst = Math.min(...badges.map(b => b.ratio));
  console.log(`  ${badges.length} badges ${where}: lowest contrast ${worst.toFixed(2)}:1`);
}

run(
  async page => {
    const known = await endpoints();
    const has = endpoint => known.has(endpoint);
    const hasPreview = has('schedule/preview');
    const hasEdit = has('task/update') && has('task/history');
    const hasRerun = has('task/rerun');
    console.log(
      `  this server: schedule/preview ${hasPreview}, task/update ${hasEdit}, task/rerun ${hasRerun}`
    );

    await step(page, 'sidebar-sparklines', async () => {
      await openLab(page);
      await sidebarTab(page).click();
      const row = taskRow(page, config.task.name);
      await row.waitFor();
      const bars = row.locator('.jp-OrchSpark-bar');
      await until('a sparkline of the newest runs', async () => (await bars.count()) >= 4);
      assert.match(await row.textContent(), /weekdays at 06:00 \(Europe\/Paris\)/);
    });

    await step(page, 'status-bar-agrees', async () => {
      const text = page.locator('.jp-OrchRunningStatus-text');
      await until('the status bar to count the run going', async () =>
        /^[1-9]\d* running$/.test((await text.textContent()) ?? '')
      );
      const shown = await page
        .locator(`${taskRows} .jp-OrchTaskList-details .jp-OrchBadge[data-status="running"]`)
        .count();
      const count = Number((await text.textContent()).split(' ')[0]);
      assert.ok(count >= shown && shown >= 1, `status bar ${count}, list ${shown}`);
    });

    await step(page, 'task-view-light', async () => {
      await taskRow(page, config.task.name).dblclick();
      const panel = page.locator(view);
      await panel.waitFor();
      await panel.locator('.jp-OrchTaskPanel-name', { hasText: config.task.name }).waitFor();
      const facts = await panel.locator('.jp-OrchTaskPanel-facts').textContent();
      assert.match(facts, /Europe\/Paris/);
      assert.match(facts, /scheduled/);
      assert.match(facts, /python \(main\.py\)/);
      // the Executor row names the task's executor; what runs has its own row
      const task = await api('task/get_by_id', { id: config.task.id });
      const fact = term =>
        panel.locator('.jp-OrchTaskPanel-facts dt', { hasText: term }).locator('xpath=following-sibling::dd[1]');
      assert.equal(await fact('Executor').textContent(), task.executor || "the server's default");
      assert.equal(await fact(/^Runs$/).textContent(), 'python (main.py)');
      assert.match(facts, /"lines":40/);
      assert.match(facts, /600 s/);
      if (hasPreview) {
        assert.equal(await panel.locator('.jp-OrchTaskPanel-fires li').count(), 3);
      }
      await until('four bars in the chart', async () =>
        (await panel.locator('.jp-OrchChart-bar').count()) >= 4
      );
      await panel.locator('.jp-OrchLogPane-line', { hasText: 'line 39 of the scheduled run' }).waitFor();
      await checkBadges(page, 'in the light theme');
    });

    await step(page, 'chart-hover-click', async () => {
      const panel = page.locator(view);
      const first = panel.locator('.jp-OrchChart-bar').first();
      await first.hover();
      const tip = panel.locator('.jp-OrchChart-tip');
      await tip.waitFor();
      assert.match(await tip.textContent(), /took .*\n.*|took/);
      const runId = await first.getAttribute('data-run-id');
      await first.click();
      await until('the oldest run selected', async () =>
        (await panel.locator('.jp-OrchChart-bar.jp-mod-selected').getAttribute('data-run-id')) === runId
      );
      await panel.locator('.jp-OrchTaskPanel-run', { hasText: `Run ${runId.slice(0, 8)}` }).waitFor();
      await panel.locator('.jp-OrchLogPane-line', { hasText: 'line 0 of' }).waitFor();
    });

    await step(page, 'log-search-wrap-stderr', async () => {
      const panel = page.locator(view);
      await panel.locator('.jp-OrchLogPane-search').fill('SCHEDULED RUN');
      await until('40 highlighted matches', async () =>
        (await panel.locator('.jp-OrchLogPane-text mark').count()) === 40
      );
      await panel.locator('.jp-OrchLogPane-text mark.jp-mod-current').waitFor();
      assert.match(await panel.locator('.jp-OrchLogPane-count').textContent(), /1 of 40/);
      await panel.locator('.jp-OrchLogPane-button', { hasText: 'Wrap' }).click();
      await panel.locator('.jp-OrchLogPane.jp-mod-wrap').waitFor();
      await panel.locator('.jp-OrchLogPane-button', { hasText: 'First stderr' }).click();
      const stderr = panel.locator('.jp-OrchLogPane-line[data-stream="stderr"]').first();
      assert.match(await stderr.textContent(), /a warning on stderr/);
      await until('the stderr line in view', () => stderr.isVisible());
    });

    await step(page, 'log-download', async () => {
      const panel = page.locator(view);
      const [download] = await Promise.all([
        page.waitForEvent('download'),
        panel.locator('.jp-OrchLogPane-button', { hasText: 'Download' }).click()
      ]);
      assert.match(download.suggestedFilename(), /^nightly-report-run-[0-9a-f]{8}\.log$/);
      const file = await download.path();
      const text = readFileSync(file, 'utf-8');
      assert.equal(text.split('\n').filter(l => / stdout line \d+ of/.test(l)).length, 40);
      assert.match(text, / stderr a warning on stderr/);
      await panel.locator('.jp-OrchLogPane-search').fill('');
    });

    const darkShot = await step(page, 'task-view-dark', async () => {
      await setTheme(page, 'JupyterLab Dark', false);
      // a selected row in the sidebar, whose badges sit on the selection colour
      await taskRow(page, config.task.name).click();
      await checkBadges(page, 'in the dark theme');
    });

    await step(page, 'task-view-light-again', async () => {
      await setTheme(page, 'JupyterLab Light', true);
      await checkBadges(page, 'in the light theme, row selected');
      await page.locator(view).evaluate(node => {
        node.scrollTop = 0;
      });
    });
    const shot = shotPath(stepCount(), 'task-view-light-again');
    if (config.docsShot) {
      mkdirSync(dirname(config.docsShot), { recursive: true });
      copyFileSync(shot, config.docsShot);
      copyFileSync(darkShot, config.docsShot.replace(/\.png$/, '-dark.png'));
    }

    await step(page, 'create-form-schedule', async () => {
      // the orchestrations' context menu runs this command with the row's orchestration
      // (it resolves once the dialog closes: not awaited)
      page
        .evaluate(
          orchId =>
            window.jupyterapp.commands.execute('jupyter-orch:new-task', { orchId }),
          config.task.orchId
        )
        .catch(() => undefined);
      const dialog = page.locator('.jp-Dialog .jp-OrchCreateDialog');
      await dialog.waitFor();
      await dialog.locator('input[type="radio"][value="scheduled"]').check();
      assert.equal(await dialog.locator('input[name="timezone"]').inputValue(), ZONE);
      const cron = dialog.locator('input[name="schedule"]');
      const words = dialog.locator('.jp-OrchCreateDialog-preview');
      await cron.fill('61 * * * *');
      assert.match(await words.textContent(), /minute: "61" is not between 0 and 59/);
      assert.equal(await cron.getAttribute('aria-invalid'), 'true');
      await dialog.locator('.jp-OrchSchedule-preset').selectOption('weekdays');
      await dialog.locator('.jp-OrchSchedule-time').fill('07:45');
      await dialog.locator('.jp-OrchSchedule-time').dispatchEvent('change');
      assert.equal(await cron.inputValue(), '45 7 * * 1-5');
      assert.equal(await words.textContent(), 'weekdays at 07:45');
      if (hasPreview) {
        await until('three fire times', async () =>
          (await dialog.locator('.jp-OrchSchedule-fire').count()) === 3
        );
      } else {
        console.log('  (this server has no schedule/preview: no fire times to show)');
      }
    });

    await step(page, 'create-form-refused-dark', async () => {
      await setTheme(page, 'JupyterLab Dark', false);
      await page.locator('.jp-Dialog .jp-OrchCreateDialog input[name="schedule"]').fill('0 9 * * 8');
      await page.locator('.jp-Dialog-button.jp-mod-accept', { hasText: 'Create task' }).click();
      const error = page.locator('.jp-Dialog .jp-OrchCreateDialog-error');
      await error.waitFor();
      assert.match(await error.textContent(), /day of week: "8"/);
      await page.locator('.jp-Dialog-button', { hasText: 'Not now' }).click();
      await page.locator('.jp-Dialog').waitFor({ state: 'detached' });
      await setTheme(page, 'JupyterLab Light', true);
    });

    if (hasEdit) {
      await step(page, 'edit-in-place', async () => {
        const panel = page.locator(view);
        await panel.locator('.jp-OrchTaskPanel-button', { hasText: 'Edit' }).click();
        const form = panel.locator('.jp-OrchEdit');
        await form.waitFor();
        await form.locator('input[name="schedule"]').fill('61 * * * *');
        await form.locator('button[type="submit"]').click();
        await form
          .locator('.jp-OrchCreateDialog-error', { hasText: 'minute: "61" is not between 0 and 59' })
          .waitFor();
        await form.locator('.jp-OrchSchedule-preset').selectOption('weekdays');
        await form.locator('.jp-OrchSchedule-time').fill('07:30');
        await form.locator('.jp-OrchSchedule-time').dispatchEvent('change');
        assert.equal(await form.locator('input[name="schedule"]').inputValue(), '30 7 * * 1-5');
        await form.locator('input[name="timeout"]').fill('900');
        await form.locator('button[type="submit"]').click();
        await form.waitFor({ state: 'detached' });
        const facts = panel.locator('.jp-OrchTaskPanel-facts');
        await facts.locator('dd', { hasText: '900 s' }).waitFor();
        const task = await api('task/get_by_id', { id: config.task.id });
        assert.equal(task.schedule, '30 7 * * 1-5');
        assert.equal(task.timeout, 900);
        // the next fire times follow at once, on the task zone's clock
        const fires = panel.locator('.jp-OrchTaskPanel-fires li');
        await until('three new fire times', async () =>
          (await fires.count()) === 3 && /07:30/.test(await fires.first().textContent())
        );
        await panel.locator('.jp-OrchTaskPanel-history summary').click();
        await panel
          .locator('.jp-OrchTaskPanel-change', { hasText: 'schedule: 0 6 * * 1-5 → 30 7 * * 1-5' })
          .waitFor();
        await panel.evaluate(node => {
          node.scrollTop = 0;
        });
      });
    }

    if (hasRerun) {
      await step(page, 'run-again-with-other-arguments', async () => {
        const panel = page.locator(view);
        const bars = panel.locator('.jp-OrchChart-bar');
        const before = await bars.count();
        await panel.locator('.jp-OrchTaskPanel-button', { hasText: 'Run again with…' }).click();
        const dialog = page.locator('.jp-Dialog');
        await dialog.locator('textarea').fill('{"lines": 3}');
        await dialog.locator('.jp-Dialog-button.jp-mod-accept', { hasText: 'Run' }).click();
        await dialog.waitFor({ state: 'detached' });
        await until('a bar for the new run', async () => (await bars.count()) === before + 1);
        await panel.locator('.jp-OrchLogPane-line', { hasText: 'line 2 of the scheduled run' }).waitFor();
        await panel.locator('.jp-OrchLogPane-line', { hasText: 'a warning on stderr' }).waitFor();
        assert.equal(
          await panel.locator('.jp-OrchLogPane-line', { hasText: 'line 3 of' }).count(),
          0,
          'the new run had the edited arguments'
        );
      });
    }

    if (hasRerun) {
      await step(page, 'run-once-task-run-again-is-a-new-task', async () => {
        const once = config.onceTask;
        await page.evaluate(
          taskId => window.jupyterapp.commands.execute('jupyter-orch:open-task', { taskId }),
          once.id
        );
        const panel = page.locator(`${view}:visible`);
        await panel.locator('.jp-OrchTaskPanel-name', { hasText: once.name }).waitFor();
        const again = panel.locator('.jp-OrchTaskPanel-button', { hasText: /^Run again$/ });
        assert.match(await again.getAttribute('title'), /a new run-once task/);
        await again.click();
        const tasks = await until('a second run-once task', async () => {
          const listed = await api('task/list', { orch_id: once.orchId });
          const named = listed.filter(t => t.name === once.name);
          return named.length === 2 ? named : null;
        });
        const made = tasks.find(t => t.id !== once.id);
        // its own view opened, showing its run
        await page.locator(`#jp-OrchTaskPanel-${made.id}:visible`).waitFor();
        await page
          .locator(`#jp-OrchTaskPanel-${made.id} .jp-OrchLogPane-line`, {
            hasText: 'line 0 of the scheduled run'
          })
          .waitFor();
      });
    }

    await step(page, 'run-now-where-it-means-something', async () => {
      const runNow = page.locator(`${sidebar} [data-command="jupyter-orch:run-now"]`);
      await taskRow(page, config.longTask.name).click();
      await until('Run now disabled for a run-once task', async () =>
        (await runNow.getAttribute('aria-disabled')) === 'true' ||
        (await runNow.isDisabled())
      );
      await taskRow(page, config.task.name).click();
      await until('Run now enabled for a scheduled task', async () =>
        !(await runNow.isDisabled()) && (await runNow.getAttribute('aria-disabled')) !== 'true'
      );
    });

    if (config.notebook) {
      await step(page, 'open-link-from-a-kernel', async () => {
        await page.evaluate(async path => {
          await window.jupyterapp.commands.execute('docmanager:open', { path });
        }, config.notebook);
        await page.locator('.jp-NotebookPanel:visible .jp-Cell .cm-content').waitFor();
        await until(
          'the notebook kernel to be idle',
          () =>
            page.evaluate(
              () =>
                window.jupyterapp.shell.currentWidget?.sessionContext?.session?.kernel
                  ?.status === 'idle'
            ),
          90_000
        );
        // what `%orch_open long-run` displays
        await page.evaluate(
          ({ id, name }) => {
            const cell = window.jupyterapp.shell.currentWidget.content.activeCell;
            cell.model.sharedModel.setSource(
              'from IPython.display import display\n' +
                `display({"application/vnd.jupyter-orch.open+json": {"task_id": "${id}", "name": "${name}"}, ` +
                `"text/plain": "Task ${name}"}, raw=True)`
            );
          },
          config.longTask
        );
        await page.locator('.jp-NotebookPanel:visible .jp-Cell .cm-content').first().click();
        await page.keyboard.press('Shift+Enter');
        const link = page.locator('.jp-OrchOpenLink-link', {
          hasText: `Open task ${config.longTask.name}`
        });
        // rendered in the notebook, which the task's view it opened at once now covers
        await link.waitFor({ state: 'attached', timeout: 90_000 });
        await page
          .locator(`${view} .jp-OrchTaskPanel-name`, { hasText: config.longTask.name })
          .waitFor();
        await page
          .locator(`${view}:visible .jp-OrchLogPane-line`, { hasText: 'hello from the browser test' })
          .waitFor();
        // back in the notebook, the link shows the view again
        await page.locator('.lm-TabBar-tab', { hasText: config.notebook }).click();
        await page.locator(`${view}:visible`).waitFor({ state: 'detached' });
        await link.click();
        await page.locator(`${view}:visible .jp-OrchTaskPanel-name`, { hasText: config.longTask.name }).waitFor();
      });

      await step(page, 'open-from-the-widget-panel', async () => {
        await page.locator('.lm-TabBar-tab', { hasText: config.notebook }).click();
        // the tasks panel of jupyter_orch.widgets, its task selected, "Open in JupyterLab"
        await page.evaluate(id => {
          const notebook = window.jupyterapp.shell.currentWidget.content;
          notebook.model.sharedModel.insertCell(notebook.model.cells.length, {
            cell_type: 'code',
            source:
              'from jupyter_orch.widgets import TasksPanel\n' +
              `p = TasksPanel(refresh_seconds=3600)\np.select_task("${id}")\n` +
              'assert p.wait_idle()\np'
          });
          notebook.activeCellIndex = notebook.model.cells.length - 1;
        }, config.task.id);
        await page.evaluate(() =>
          window.jupyterapp.commands.execute('notebook:run-cell')
        );
        const button = page.locator('.jupyter-widgets button', {
          hasText: 'Open in JupyterLab'
        });
        await until('the panel enabling Open in JupyterLab', async () =>
          (await button.count()) === 1 && (await button.isEnabled()), 90_000
        );
        await button.click();
        await page
          .locator(`${view}:visible .jp-OrchTaskPanel-name`, { hasText: config.task.name })
          .waitFor();
      });
    }
  },
  { contextOptions: { timezoneId: ZONE, acceptDownloads: true } }
);
