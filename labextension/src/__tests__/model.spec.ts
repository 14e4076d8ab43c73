import { IFailedRun, ILogChange, OrchModel } from '../model';
import { FakeApi, makeOrch, raw, until } from './fakeapi';

function setup(): { api: FakeApi; model: OrchModel } {
  const api = new FakeApi();
  const model = new OrchModel({ api, isHidden: () => false });
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
      model.tasksChanged.connect(() => (tasksChanged += 1));
      model.orchestrationsChanged.connect(() => (orchsChanged += 1));

      await model.refresh();
      expect(model.orchestrations.map(o => o.name)).toEqual(['hello']);
      expect(model.tasks.map(t => t.name)).toEqual(['first']);
      expect(model.taskCount(orch.id)).toBe(1);
      expect([tasksChanged, orchsChanged]).toEqual([1, 1]);

      await model.refresh();
      expect([tasksChanged, orchsChanged]).toEqual([1, 1]);

      api.tasks[0].status = 'success';
      await model.refresh();
      expect(tasksChanged).toBe(2);
    });

    it('asks for one run per task, not every run', async () => {
      await model.refresh();
      expect(api.calls).toContain('tasks 1');
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

  describe('running count', () => {
    it('counts tasks whose newest run is running', async () => {
      const orch = makeOrch();
      api.orchestrations.push(orch);
      const a = api.addTask(orch);
      const b = api.addTask(orch);
      api.addTask(orch);
      const runA = api.addRun(a, 'running');
      api.addRun(b, 'success');
      api.addRun(b, 'running');
      const counts: number[] = [];
      model.runningCountChanged.connect((_, n) => counts.push(n));

      await model.refresh();
      expect(model.runningCount).toBe(2);

      api.setRun(runA, 'success');
      await model.refresh();
      expect(model.runningCount).toBe(1);
      expect(counts).toEqual([2, 1]);
    });
  });

  describe('failed runs', () => {
    let failed: IFailedRun[];

    beforeEach(() => {
      failed = [];
      model.runFailed.connect((_, f) => failed.push(f));
    });

    it('are not announced on the first load', async () => {
      const orch = makeOrch();
      api.orchestrations.push(orch);
      api.addRun(api.addTask(orch), 'failure');
      await model.refresh();
      expect(failed).toEqual([]);
    });

    it('are announced once when a running run fails', async () => {
      const orch = makeOrch();
      api.orchestrations.push(orch);
      const task = api.addTask(orch, { name: 'nightly' });
      const run = api.addRun(task, 'running');
      await model.refresh();
      api.setRun(run, 'failure');
      await model.refresh();
      await model.refresh();
      expect(failed.map(f => [f.task.name, f.runId, f.status])).toEqual([
        ['nightly', run.run_id, 'failure']
      ]);
    });

    it('are announced for a run that started and failed between two looks', async () => {
      const orch = makeOrch();
      api.orchestrations.push(orch);
      const task = api.addTask(orch);
      api.addRun(task, 'success');
      await model.refresh();
      const run = api.addRun(task, 'timed_out');
      const created = api.addTask(orch);
      const other = api.addRun(created, 'failure');
      await model.refresh();
      expect(failed.map(f => f.runId).sort()).toEqual(
        [run.run_id, other.run_id].sort()
      );
    });

    it('are not announced for a killed run', async () => {
      const orch = makeOrch();
      api.orchestrations.push(orch);
      const task = api.addTask(orch);
      const run = api.addRun(task, 'running');
      await model.refresh();
      api.setRun(run, 'killed');
      await model.refresh();
      expect(failed).toEqual([]);
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
      expect(model.runs.map(r => r.run_id)[0]).toBe(newest.run_id);
      expect(model.selectedRunId).toBe(newest.run_id);
      await until(() => model.logState === 'ended');
      expect(model.logLines.map(l => [l.stream, l.text])).toEqual([
        ['stdout', 'hello'],
        ['stderr', 'oops']
      ]);
    });

    it('joins the pieces of a long line', async () => {
      const orch = makeOrch();
      api.orchestrations.push(orch);
      const task = api.addTask(orch);
      api.addRun(task, 'success', [
        raw('abc', 'stdout', 'P'),
        raw('err', 'stderr'),
        raw('def', 'stdout', 'P'),
        raw('ghi')
      ]);
      await model.refresh();
      await model.selectTask(task.id);
      await until(() => model.logState === 'ended');
      expect(model.logLines.map(l => [l.n, l.text])).toEqual([
        [1, 'err'],
        [0, 'abcdefghi']
      ]);
    });

    it('follows a running run live and resumes after a broken connection', async () => {
      const orch = makeOrch();
      api.orchestrations.push(orch);
      const task = api.addTask(orch, { run_type: 'NetworkService' });
      const run = api.addRun(task, 'running', [raw('one')]);
      const changes: ILogChange[] = [];
      model.logChanged.connect((_, change) => changes.push(change));
      await model.refresh();
      await model.selectTask(task.id);
      await until(() => api.follows.length === 1);
      await until(() => model.logLines.length === 1);
      expect(model.logState).toBe('following');

      api.logs.get(run.run_id)?.push(raw('two'));
      api.follows[0].send({ n: 1, line: raw('two') });
      await until(() => model.logLines.length === 2);
      expect(changes[changes.length - 1].added.map(l => l.text)).toEqual([
        'two'
      ]);

      // the connection breaks: the model asks again from the next line
      api.follows[0].close();
      await until(() => api.follows.length === 2);
      expect(api.follows[1].from).toBe(2);

      api.setRun(run, 'success');
      api.follows[1].send({ end: true, status: 'success', next: 2 });
      api.follows[1].close();
      await until(() => model.logState === 'ended');
      expect(model.logLines.map(l => l.text)).toEqual(['one', 'two']);
      expect(model.selectedRun?.status).toBe('success');
    }, 10000);

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

    it('filters by orchestration and forgets a filter whose orchestration is gone', async () => {
      const orch = makeOrch();
      api.orchestrations.push(orch);
      api.addTask(orch);
      await model.refresh();
      let changes = 0;
      model.filterChanged.connect(() => (changes += 1));
      model.setOrchFilter(orch.id);
      expect(model.orchFilter).toBe(orch.id);
      api.orchestrations = [];
      api.tasks = [];
      await model.refresh();
      expect(model.orchFilter).toBeNull();
      expect(changes).toBe(2);
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
      expect(model.runningCount).toBe(1);
      await model.kill(task.id);
      expect(model.task(task.id)?.status).toBe('killed');
      expect(
        api.calls.filter(c => !/^(tasks|workspaces|orch|runs)/.test(c))
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
      expect(model.orchestration(orchId)?.name).toBe('hello');
      const taskId = await model.createTask({
        kind: 'once',
        request: { orch_id: orchId, workspace_id: 1, json: {}, name: 'hi' }
      });
      expect(model.selectedTask?.id).toBe(taskId);
      expect(model.selectedTask?.name).toBe('hi');
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
        interval: 1000,
        isHidden: () => false
      });
      polling.start();
      await jest.advanceTimersByTimeAsync(10);
      const count = () => polled.calls.filter(c => c === 'tasks 1').length;
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

    it('polls less often while the page is hidden', async () => {
      const polled = new FakeApi();
      const polling = new OrchModel({
        api: polled,
        interval: 1000,
        hiddenInterval: 10000,
        isHidden: () => true
      });
      polling.start();
      await jest.advanceTimersByTimeAsync(9000);
      expect(polled.calls.filter(c => c === 'tasks 1').length).toBe(1);
      polling.dispose();
    });

    it('polls less often while nobody looks at the list', async () => {
      const polled = new FakeApi();
      let idle = true;
      const polling = new OrchModel({
        api: polled,
        interval: 1000,
        idleInterval: 5000,
        isHidden: () => false,
        isIdle: () => idle
      });
      const count = () => polled.calls.filter(c => c === 'tasks 1').length;
      polling.start();
      await jest.advanceTimersByTimeAsync(4000);
      expect(count()).toBe(1);
      idle = false;
      polling.wake();
      await jest.advanceTimersByTimeAsync(10);
      expect(count()).toBe(2);
      await jest.advanceTimersByTimeAsync(1000);
      expect(count()).toBe(3);
      await jest.advanceTimersByTimeAsync(5000);
      expect(count()).toBe(8);
      polling.dispose();
    });

    it('keeps polling after a failure', async () => {
      const polled = new FakeApi();
      polled.failure = new Error('down');
      const polling = new OrchModel({
        api: polled,
        interval: 1000,
        isHidden: () => false
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
