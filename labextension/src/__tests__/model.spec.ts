import { IFailedRun } from '../activitymodel';
import { OrchModel } from '../model';
import { IOrchestration } from '../types';
import { addTasks, FakeApi, makeOrch, names, raw, until } from './fakeapi';

function setup(): { api: FakeApi; model: OrchModel } {
  const api = new FakeApi();
  const model = new OrchModel({ api });
  return { api, model };
}

describe('OrchModel', () => {
  let api: FakeApi;
  let model: OrchModel;

  beforeEach(() => {
    ({ api, model } = setup());
  });

  afterEach(() => {
    model.dispose();
  });

  describe('refresh', () => {
    it('loads orchestrations and tasks, and signals only changes', async () => {
      const orch = makeOrch({ name: 'hello' });
      api.orchestrations.push(orch);
      api.addTask(orch, { name: 'first' });
      let tasksChanged = 0;
      let orchsChanged = 0;
      model.tasks.changed.connect(() => (tasksChanged += 1));
      model.orchestrations.changed.connect(() => (orchsChanged += 1));

      await model.refresh();
      expect(model.orchestrations.items.map(o => o.name)).toEqual(['hello']);
      expect(names(model.tasks.items)).toEqual(['first']);
      expect(model.tasks.count(orch.id)).toEqual({ count: 1, exact: true });
      expect([tasksChanged, orchsChanged]).toEqual([1, 1]);

      await model.refresh();
      expect([tasksChanged, orchsChanged]).toEqual([1, 1]);

      api.tasks[0].status = 'success';
      await model.refresh();
      expect(tasksChanged).toBe(2);
    });

    it('asks for the newest page of tasks with the runs of their sparklines', async () => {
      await model.refresh();
      expect(api.calls).toContain('tasks 8 limit=100');
    });

    it("rejects with the server's message and says it until a refresh works", async () => {
      const errors: (string | null)[] = [];
      model.errorChanged.connect((_, error) => errors.push(error));
      api.failure = new Error('403: not authorized to read orchestrations');
      await expect(model.refresh()).rejects.toThrow(
        'not authorized to read orchestrations'
      );
      expect(model.error).toBe('403: not authorized to read orchestrations');
      api.failure = null;
      await model.refresh();
      expect(model.error).toBeNull();
      expect(errors).toEqual([
        '403: not authorized to read orchestrations',
        null
      ]);
    });
  });

  describe('selection', () => {
    it("selects the task's newest run and reads its log", async () => {
      const orch = makeOrch();
      api.orchestrations.push(orch);
      const task = api.addTask(orch);
      api.addRun(task, 'success', [raw('old')]);
      const newest = api.addRun(task, 'failure', [
        raw('hello'),
        raw('oops', 'stderr')
      ]);
      await model.refresh();

      await model.selectTask(task.id);
      expect(model.runs.items.map(r => r.run_id)[0]).toBe(newest.run_id);
      expect(model.selectedRunId).toBe(newest.run_id);
      await until(() => model.log.state === 'ended');
      expect(model.log.lines.map(l => [l.stream, l.text])).toEqual([
        ['stdout', 'hello'],
        ['stderr', 'oops']
      ]);
    });

    it("shows the followed run's final status when its log ends, then refreshes", async () => {
      const orch = makeOrch();
      api.orchestrations.push(orch);
      const task = api.addTask(orch, { run_type: 'NetworkService' });
      const run = api.addRun(task, 'running', [raw('one')]);
      await model.refresh();
      await model.selectTask(task.id);
      await until(() => api.follows.length === 1);
      expect(model.log.state).toBe('following');
      expect(model.selectedRun?.status).toBe('running');

      api.calls = [];
      api.setRun(run, 'success');
      api.follows[0].send({ end: true, status: 'success', next: 1 });
      api.follows[0].close();
      await until(() => model.log.state === 'ended');
      expect(model.selectedRun?.status).toBe('success');
      await until(() => api.calls.includes(`runs ${task.id}`));
      expect(model.selectedRun?.status).toBe('success');
      expect(model.log.lines.map(l => l.text)).toEqual(['one']);
    });

    it('moves to a newer run unless the user chose one', async () => {
      const orch = makeOrch();
      api.orchestrations.push(orch);
      const task = api.addTask(orch, { run_type: 'CronJob' });
      const first = api.addRun(task, 'success');
      await model.refresh();
      await model.selectTask(task.id);
      expect(model.selectedRunId).toBe(first.run_id);

      const second = api.addRun(task, 'success');
      await model.refresh();
      expect(model.selectedRunId).toBe(second.run_id);

      model.selectRun(first.run_id);
      api.addRun(task, 'success');
      await model.refresh();
      expect(model.selectedRunId).toBe(first.run_id);
    });

    it('clears the selection when the task goes away', async () => {
      const orch = makeOrch();
      api.orchestrations.push(orch);
      const task = api.addTask(orch);
      await model.refresh();
      await model.selectTask(task.id);
      expect(model.selectedTask?.id).toBe(task.id);
      api.tasks = [];
      await model.refresh();
      expect(model.selectedTask).toBeNull();
      expect(model.selectedRunId).toBeNull();
    });
  });

  describe('actions', () => {
    it('kill, pause, resume and run now call the server, then refresh', async () => {
      const orch = makeOrch();
      api.orchestrations.push(orch);
      const task = api.addTask(orch, { run_type: 'CronJob' });
      await model.refresh();

      await model.setPaused(task.id, true);
      expect(model.task(task.id)?.status).toBe('paused');
      await model.setPaused(task.id, false);
      expect(model.task(task.id)?.status).toBe('started');
      await model.runNow(task.id);
      expect(model.activity.runningCount).toBe(1);
      await model.kill(task.id);
      expect(model.task(task.id)?.status).toBe('killed');
      expect(
        api.calls.filter(c => !/^(tasks|workspaces|orch|runs|activity)/.test(c))
      ).toEqual([
        `pause ${task.id} true`,
        `pause ${task.id} false`,
        `run_now ${task.id}`,
        `kill ${task.id}`
      ]);
    });

    it("rejects with the server's message", async () => {
      const orch = makeOrch();
      api.orchestrations.push(orch);
      const task = api.addTask(orch, { killed: true, status: 'killed' });
      await model.refresh();
      await expect(model.kill(task.id)).rejects.toThrow(
        `task ${task.id} is already killed`
      );
    });

    it('creates an orchestration from a path, then a task that gets selected', async () => {
      const orchId = await model.createFromPath('projects/hello');
      expect(model.orchestrations.get(orchId)?.name).toBe('hello');
      const taskId = await model.createTask({
        kind: 'once',
        request: { orch_id: orchId, workspace_id: 1, json: {}, name: 'hi' }
      });
      expect(model.selectedTask?.id).toBe(taskId);
      expect(model.selectedTask?.name).toBe('hi');
    });
  });

  describe('Open output', () => {
    /** A task of an orchestration with this entrypoint, refreshed and selected. */
    async function selected(entrypoint: string): Promise<{
      taskId: string;
      runId: string;
    }> {
      const orch = makeOrch({ entrypoint });
      api.orchestrations.push(orch);
      const task = api.addTask(orch, { name: 'report' });
      const run = api.addRun(task, 'success');
      await model.refresh();
      await model.selectTask(task.id);
      expect(model.selectedRunId).toBe(run.run_id);
      return { taskId: task.id, runId: run.run_id };
    }

    it("is offered for the selected run of a notebook's task", async () => {
      const { taskId, runId } = await selected('main.ipynb');
      expect(model.runsNotebook()).toBe(true);
      expect(model.runsNotebook(taskId)).toBe(true);
      expect(model.runOutput()).toEqual({
        taskId,
        runId,
        title: `report – run ${runId.slice(0, 8)}`
      });
    });

    it('is offered for any .ipynb entrypoint', async () => {
      await selected('reports/Weekly.IPYNB');
      expect(model.runOutput()).not.toBeNull();
    });

    it("is not offered for a main.py task's run", async () => {
      await selected('main.py');
      expect(model.runsNotebook()).toBe(false);
      expect(model.runOutput()).toBeNull();
    });

    it('is not offered without a run, or before the orchestration is known', async () => {
      expect(model.runOutput()).toBeNull();
      const orch = makeOrch({ entrypoint: 'main.ipynb' });
      const task = api.addTask(orch);
      api.orchestrations.push(orch);
      await model.refresh();
      await model.selectTask(task.id);
      expect(model.selectedRunId).toBeNull();
      expect(model.runOutput()).toBeNull();
      const run = api.addRun(task, 'running');
      expect(model.runOutput(task.id, run.run_id)).not.toBeNull();
      expect(model.runOutput(task.id, null)).toBeNull();
      api.orchestrations = [];
      await model.refresh();
      expect(model.runOutput(task.id, run.run_id)).toBeNull();
    });

    it('names any run of a loaded task, not only the selected one', async () => {
      const { taskId } = await selected('main.ipynb');
      const other = '00000000-0000-4000-8000-abcdefabcdef';
      expect(model.runOutput(taskId, other)?.runId).toBe(other);
      expect(model.runOutput('no-such-task', other)).toBeNull();
    });

    it('is offered for an orchestration made from a notebook', async () => {
      const orchId = await model.createFromPath('work/analysis.ipynb');
      expect(model.orchestrations.get(orchId)?.entrypoint).toBe('main.ipynb');
      const taskId = await model.createTask({
        kind: 'once',
        request: { orch_id: orchId, workspace_id: 1, json: {} }
      });
      const run = api.addRun(api.tasks[0], 'running');
      expect(api.tasks[0].id).toBe(taskId);
      await model.refresh();
      expect(model.runOutput()?.runId).toBe(run.run_id);
    });
  });

  describe('beside the paged tasks', () => {
    let paged: OrchModel;
    let orch: IOrchestration;

    beforeEach(() => {
      paged = new OrchModel({ api, pageSize: 3, maxPolledTasks: 6 });
      orch = makeOrch();
      api.orchestrations.push(orch);
    });

    afterEach(() => {
      paged.dispose();
    });

    it('keeps the selection across polls and pages, loaded or not', async () => {
      const made = addTasks(api, orch, 8);
      await paged.refresh();
      await paged.tasks.loadMore();
      await paged.selectTask(made[3].id);
      addTasks(api, orch, 4, 'n');
      await paged.refresh();
      // t3 is no longer among the six loaded, yet stays selected and fresh
      expect(paged.tasks.items.map(t => t.id)).not.toContain(made[3].id);
      expect(paged.selectedTaskId).toBe(made[3].id);
      made[3].status = 'paused';
      await paged.refresh();
      expect(paged.selectedTask?.status).toBe('paused');
      expect(api.calls).toContain(`task ${made[3].id}`);

      // a task never loaded can be selected too (a notification's "Open log")
      await paged.selectTask(made[0].id);
      expect(paged.selectedTask?.name).toBe('t0');

      api.tasks = api.tasks.filter(t => t.id !== made[0].id);
      await paged.refresh();
      expect(paged.selectedTask).toBeNull();
      expect(paged.selectedTaskId).toBeNull();
    });

    it('does not ask for a selected task the poll brought', async () => {
      const made = addTasks(api, orch, 2);
      await paged.refresh();
      await paged.selectTask(made[1].id);
      await paged.refresh();
      expect(api.calls.filter(c => c.startsWith('task ')).length).toBe(0);
    });

    it("polls at once when an orchestration's own tasks are to be fetched", async () => {
      const old = makeOrch({ name: 'old' });
      api.orchestrations.push(old);
      addTasks(api, old, 2, 'o');
      addTasks(api, orch, 4);
      await paged.refresh();
      api.calls = [];
      paged.tasks.setOrchFilter(old.id);
      await until(() => paged.tasks.items.length === 2);
      // the whole poll, as the poller would make it
      expect(api.calls).toEqual(
        expect.arrayContaining([
          `tasks 8 limit=3 orch=${old.id}`,
          'tasks 8 limit=3',
          'activity since'
        ])
      );
    });
  });

  describe('polling', () => {
    beforeEach(() => {
      jest.useFakeTimers();
    });

    afterEach(() => {
      jest.useRealTimers();
    });

    it('asks for the task list every interval until stopped', async () => {
      const polled = new FakeApi();
      const polling = new OrchModel({
        api: polled,
        interval: 1000
      });
      polling.start();
      await jest.advanceTimersByTimeAsync(10);
      const count = () =>
        polled.calls.filter(c => c === 'tasks 8 limit=100').length;
      expect(count()).toBe(1);
      await jest.advanceTimersByTimeAsync(1000);
      expect(count()).toBe(2);
      await jest.advanceTimersByTimeAsync(3000);
      expect(count()).toBe(5);
      polling.stop();
      await jest.advanceTimersByTimeAsync(5000);
      expect(count()).toBe(5);
      polling.dispose();
    });

    it('stands by while the page is hidden, and polls again once it shows', async () => {
      const polled = new FakeApi();
      let hidden = true;
      const polling = new OrchModel({
        api: polled,
        interval: 1000,
        isHidden: () => hidden
      });
      const count = () =>
        polled.calls.filter(c => c === 'tasks 8 limit=100').length;
      polling.start();
      await jest.advanceTimersByTimeAsync(9000);
      expect(count()).toBe(1);
      await jest.advanceTimersByTimeAsync(60000);
      expect(count()).toBe(1);
      hidden = false;
      await jest.advanceTimersByTimeAsync(1000);
      expect(count()).toBe(2);
      polling.dispose();
    });

    it('asks only for the activity, less often, while nobody looks at the list', async () => {
      const polled = new FakeApi();
      const orch = makeOrch();
      polled.orchestrations.push(orch);
      const task = polled.addTask(orch, { name: 'unseen' });
      let idle = true;
      const polling = new OrchModel({
        api: polled,
        interval: 1000,
        idleInterval: 5000,
        isIdle: () => idle
      });
      const failed: IFailedRun[] = [];
      polling.activity.runFailed.connect((_, f) => failed.push(f));
      const count = (word: string) =>
        polled.calls.filter(c => c.startsWith(word)).length;
      polling.start();
      await jest.advanceTimersByTimeAsync(4000);
      expect([count('tasks'), count('activity')]).toEqual([0, 1]);
      // the status bar and the notifications still follow every task
      polled.addRun(task, 'running');
      polled.addRun(task, 'failure');
      await jest.advanceTimersByTimeAsync(1000);
      expect([count('tasks'), count('activity')]).toEqual([0, 2]);
      expect(polling.activity.runningCount).toBe(1);
      expect(failed.map(f => f.taskName)).toEqual(['unseen']);
      expect(polling.tasks.items).toEqual([]);

      idle = false;
      polling.wake();
      await jest.advanceTimersByTimeAsync(10);
      expect(count('tasks')).toBe(1);
      expect(names(polling.tasks.items)).toEqual(['unseen']);
      await jest.advanceTimersByTimeAsync(1000);
      expect(count('tasks')).toBe(2);
      await jest.advanceTimersByTimeAsync(5000);
      expect([count('tasks'), count('activity')]).toEqual([7, 9]);
      expect(failed).toHaveLength(1);
      polling.dispose();
    });

    it('keeps polling after a failure', async () => {
      const polled = new FakeApi();
      polled.failure = new Error('down');
      const polling = new OrchModel({
        api: polled,
        interval: 1000
      });
      polling.start();
      await jest.advanceTimersByTimeAsync(10);
      expect(polling.error).toBe('down');
      polled.failure = null;
      await jest.advanceTimersByTimeAsync(1000);
      expect(polling.error).toBeNull();
      polling.dispose();
    });
  });
});
