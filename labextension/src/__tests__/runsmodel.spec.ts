import { RunsModel } from '../runsmodel';
import { ITask } from '../types';
import { FakeApi, makeOrch } from './fakeapi';

describe('RunsModel', () => {
  let api: FakeApi;
  let runs: RunsModel;
  let task: ITask;
  let changes: number;

  beforeEach(() => {
    api = new FakeApi();
    runs = new RunsModel({ api, limit: 3 });
    task = api.addTask(makeOrch());
    changes = 0;
    runs.changed.connect(() => (changes += 1));
  });

  afterEach(() => {
    runs.dispose();
  });

  it("lists a task's newest runs, newest first, and signals only changes", async () => {
    const made = [1, 2, 3, 4].map(() => api.addRun(task, 'success'));
    expect(await runs.load()).toBe(false);
    runs.setTask(task.id);
    expect(changes).toBe(1);
    expect(await runs.load()).toBe(true);
    expect(runs.items.map(r => r.run_id)).toEqual(
      [made[3], made[2], made[1]].map(r => r.run_id)
    );
    expect(api.calls).toEqual([`runs ${task.id}`]);
    expect(changes).toBe(2);
    await runs.load();
    expect(changes).toBe(2);
    api.setRun(made[3], 'failure');
    await runs.load();
    expect(runs.run(made[3].run_id)?.status).toBe('failure');
    expect(changes).toBe(3);
  });

  it('drops an answer for a task no longer chosen', async () => {
    api.addRun(task, 'success');
    const other = api.addTask(makeOrch());
    runs.setTask(task.id);
    const pending = runs.load();
    runs.setTask(other.id);
    expect(await pending).toBe(false);
    expect(runs.items).toEqual([]);
    expect(runs.taskId).toBe(other.id);
  });

  it('shows the end of a run at once, and says whether it was running', async () => {
    const run = api.addRun(task, 'running');
    runs.setTask(task.id);
    await runs.load();
    expect(runs.markEnded(run.run_id, 'success')).toBe(true);
    expect(runs.run(run.run_id)?.status).toBe('success');
    expect(changes).toBe(3);
    expect(runs.markEnded(run.run_id, 'success')).toBe(false);
    expect(runs.markEnded('unknown', 'success')).toBe(false);
    expect(changes).toBe(3);
    // the next answer is taken in whole, whatever the list was
    api.setRun(run, 'success');
    await runs.load();
    expect(runs.run(run.run_id)?.status).toBe('success');
    expect(changes).toBe(4);
  });
});
