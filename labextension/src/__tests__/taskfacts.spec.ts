/** What the task view's header says: its executor, what runs, its schedule. */
import { taskFacts } from '../taskfacts';
import { FakeApi, makeOrch } from './fakeapi';

/** The header's rows as `term: value` (a list's items joined). */
function rows(facts: ReturnType<typeof taskFacts>): Record<string, string> {
  return Object.fromEntries(
    facts.map(f => [
      f.term,
      f.shape === 'list' ? f.items!.join(' | ') : f.value
    ])
  );
}

describe("the task view's header", () => {
  const api = new FakeApi();
  const orch = makeOrch({ name: 'report', entrypoint: 'main.py' });

  it("shows the task's executor, and what runs under its own label", () => {
    const task = api.addTask(orch, { executor: 'dask' });
    const shown = rows(taskFacts(task, orch));
    expect(shown.Executor).toBe('dask');
    expect(shown.Runs).toBe('python (main.py)');
    expect(shown.Orchestration).toBe('report');
  });

  it("says the server's default when the task names no executor", () => {
    const notebook = makeOrch({ entrypoint: 'main.ipynb' });
    const task = api.addTask(notebook, { executor: null });
    const shown = rows(taskFacts(task, notebook));
    expect(shown.Executor).toBe("the server's default");
    expect(shown.Runs).toBe('notebook (main.ipynb)');
  });

  it('waits for the orchestration before saying what runs', () => {
    const task = api.addTask(orch, { executor: 'local' });
    const shown = rows(taskFacts(task, null));
    expect(shown.Executor).toBe('local');
    expect(shown.Runs).toBe('…');
    expect(shown.Orchestration).toBe(orch.id.slice(0, 8));
  });

  it('lists the next fire times of a scheduled task, in its zone', () => {
    const task = api.addTask(orch, {
      run_type: 'CronJob',
      schedule: '0 6 * * 1-5',
      timezone: 'Europe/Paris',
      next_fires: ['2026-01-05T06:00:00+01:00', '2026-01-06T06:00:00+01:00']
    });
    const facts = taskFacts(task, orch);
    const fires = facts.find(f => f.term === 'Next runs (Europe/Paris)');
    expect(fires?.shape).toBe('list');
    expect(fires?.items).toHaveLength(2);
    expect(rows(facts).Schedule).toMatch(/weekdays at 06:00/);
  });
});
