/** Deleting tasks and orchestrations: the preview, the question, the deletion, the word. */
import {
  deleteAfterPreview,
  IDeleteUi,
  orchestrationDeletion,
  taskDeletion
} from '../deleting';
import { FakeApi, makeOrch } from './fakeapi';
import { FakeTaskApi } from './faketaskapi';

/** A user who answers `yes` and remembers what they were told. */
class FakeUi implements IDeleteUi {
  constructor(public yes = true) {}
  asked: [string, string][] = [];
  told: string[] = [];
  errors: [string, string][] = [];

  async confirm(title: string, question: string): Promise<boolean> {
    this.asked.push([title, question]);
    return this.yes;
  }
  done(message: string): void {
    this.told.push(message);
  }
  async failed(title: string, message: string): Promise<void> {
    this.errors.push([title, message]);
  }
}

describe('deleting a task', () => {
  let api: FakeApi;
  let taskApi: FakeTaskApi;
  const orch = makeOrch({ name: 'report' });

  beforeEach(() => {
    api = new FakeApi();
    api.orchestrations.push(orch);
    taskApi = new FakeTaskApi(api);
  });

  it('asks with the counts of the preview, then deletes the task with its runs', async () => {
    const keep = api.addTask(orch, { name: 'keep' });
    api.addRun(keep, 'success');
    const task = api.addTask(orch, { name: 'nightly' });
    api.addRun(task, 'failure');
    api.addRun(task, 'success');
    const going = api.addRun(task, 'running');
    const ui = new FakeUi();

    const done = await deleteAfterPreview(taskDeletion(task, taskApi), ui);

    expect(ui.asked).toEqual([
      [
        'Delete task',
        'Delete “nightly” with its 3 runs? Its logs and outputs go too; ' +
          'its run going is stopped first. This cannot be undone.'
      ]
    ]);
    expect(taskApi.deletes).toEqual([
      `tasks ${task.id} false`,
      `tasks ${task.id} true`
    ]);
    expect(done).toEqual({
      tasks: [task.id],
      task_runs: 3,
      running: [task.id],
      deleted: true
    });
    expect(ui.told).toEqual([
      'Deleted “nightly” with its 3 runs. Its run going was stopped.'
    ]);
    expect(api.tasks.map(t => t.name)).toEqual(['keep']);
    expect(api.runs.has(task.id)).toBe(false);
    expect(api.logs.has(going.run_id)).toBe(false);
    expect(api.runs.get(keep.id)).toHaveLength(1);
  });

  it('says nothing of a run going when there is none, nor of runs when it has none', async () => {
    const task = api.addTask(orch, { name: 'once' });
    api.addRun(task, 'success');
    const empty = api.addTask(orch, { name: null });
    const ui = new FakeUi();
    await deleteAfterPreview(taskDeletion(task, taskApi), ui);
    await deleteAfterPreview(taskDeletion(empty, taskApi), ui);
    expect(ui.asked.map(([, q]) => q)).toEqual([
      'Delete “once” with its 1 run? Its logs and outputs go too. This cannot be undone.',
      `Delete “task ${empty.id.slice(0, 8)}”? It has no run. This cannot be undone.`
    ]);
    expect(ui.told).toEqual([
      'Deleted “once” with its 1 run.',
      `Deleted “task ${empty.id.slice(0, 8)}”.`
    ]);
    expect(api.tasks).toEqual([]);
  });

  it('deletes nothing when the user says no', async () => {
    const task = api.addTask(orch, { name: 'nightly' });
    api.addRun(task, 'running');
    const ui = new FakeUi(false);
    expect(await deleteAfterPreview(taskDeletion(task, taskApi), ui)).toBe(
      null
    );
    expect(taskApi.deletes).toEqual([`tasks ${task.id} false`]);
    expect(api.tasks).toEqual([task]);
    expect(ui.told).toEqual([]);
  });

  it('says why when the task is unknown, without asking', async () => {
    const ui = new FakeUi();
    const ghost = { id: 'no-such-task', name: 'ghost' };
    expect(await deleteAfterPreview(taskDeletion(ghost, taskApi), ui)).toBe(
      null
    );
    expect(ui.asked).toEqual([]);
    expect(ui.errors).toEqual([
      ['Delete failed', 'task no-such-task not found']
    ]);
  });

  it("keeps the task and says why when its run does not end in time (the server's 409)", async () => {
    const task = api.addTask(orch, { name: 'stubborn' });
    api.addRun(task, 'running');
    taskApi.stuck = true;
    const ui = new FakeUi();
    expect(await deleteAfterPreview(taskDeletion(task, taskApi), ui)).toBe(
      null
    );
    expect(ui.asked).toHaveLength(1);
    expect(ui.errors).toEqual([
      [
        'Delete failed',
        'the runs going did not end in time; nothing was deleted'
      ]
    ]);
    expect(ui.told).toEqual([]);
    expect(api.tasks).toEqual([task]);
  });
});

describe('deleting an orchestration', () => {
  it('asks and tells with its tasks and runs', async () => {
    const api = new FakeApi();
    const taskApi = new FakeTaskApi(api);
    const doomed = makeOrch({ name: 'to-delete' });
    const other = makeOrch({ name: 'other' });
    api.orchestrations.push(doomed, other);
    for (const name of ['doomed-1', 'doomed-2']) {
      api.addRun(api.addTask(doomed, { name }), 'success');
    }
    const kept = api.addTask(other, { name: 'kept' });
    const ui = new FakeUi();

    const done = await deleteAfterPreview(
      orchestrationDeletion(doomed, taskApi),
      ui
    );

    expect(ui.asked).toEqual([
      [
        'Delete orchestration',
        'Delete “to-delete” with its 2 tasks and 2 runs? Their logs and outputs are ' +
          'deleted too; runs still going are stopped. This cannot be undone.'
      ]
    ]);
    expect(ui.told).toEqual([
      'Deleted “to-delete” with its 2 tasks and 2 runs.'
    ]);
    expect(done?.tasks).toHaveLength(2);
    expect(api.orchestrations).toEqual([other]);
    expect(api.tasks).toEqual([kept]);
  });
});
