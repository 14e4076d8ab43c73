import { ActivityModel, IFailedRun } from '../activitymodel';
import { OrchModel } from '../model';
import { IOrchestration } from '../types';
import { addTasks, FakeApi, makeOrch, names, until } from './fakeapi';

describe('ActivityModel', () => {
  let api: FakeApi;
  let activity: ActivityModel;
  let orch: IOrchestration;

  beforeEach(() => {
    api = new FakeApi();
    activity = new ActivityModel({ api });
    orch = makeOrch();
    api.orchestrations.push(orch);
  });

  afterEach(() => {
    activity.dispose();
  });

  describe('running count', () => {
    it('counts tasks whose newest run is running', async () => {
      const a = api.addTask(orch);
      const b = api.addTask(orch);
      api.addTask(orch);
      const runA = api.addRun(a, 'running');
      api.addRun(b, 'success');
      api.addRun(b, 'running');
      const counts: number[] = [];
      activity.runningCountChanged.connect((_, n) => counts.push(n));

      await activity.load();
      expect(activity.runningCount).toBe(2);

      api.setRun(runA, 'success');
      await activity.load();
      expect(activity.runningCount).toBe(1);
      expect(counts).toEqual([2, 1]);
    });

    it('says no less than a list polled with it shows running', () => {
      const answer = { running: 0, failed: [], as_of: api.stamp() };
      activity.apply(answer, 2);
      expect(activity.runningCount).toBe(2);
      // an answer alone (the list not polled) is taken as it is
      activity.apply({ ...answer, as_of: api.stamp() });
      expect(activity.runningCount).toBe(0);
      activity.apply({ ...answer, running: 3, as_of: api.stamp() }, 1);
      expect(activity.runningCount).toBe(3);
    });
  });

  describe('failed runs', () => {
    let failed: IFailedRun[];

    beforeEach(() => {
      failed = [];
      activity.runFailed.connect((_, f) => failed.push(f));
    });

    it('are not announced on the first load, nor on later ones', async () => {
      api.addRun(api.addTask(orch), 'failure');
      await activity.load();
      await activity.load();
      await activity.load();
      expect(failed).toEqual([]);
      expect(api.calls).toEqual([
        'activity',
        'activity since',
        'activity since'
      ]);
    });

    it("are asked for from the previous answer's time less 10 s", async () => {
      const asked = jest.spyOn(api, 'activity');
      expect(activity.since).toBeNull();
      await activity.load();
      const first = await asked.mock.results[0].value;
      const tenBefore = (iso: string): string =>
        new Date(Date.parse(iso) - 10000).toISOString();
      expect(activity.since).toBe(tenBefore(first.as_of));
      await activity.load();
      const second = await asked.mock.results[1].value;
      expect(asked.mock.calls).toEqual([[null], [tenBefore(first.as_of)]]);
      expect(activity.since).toBe(tenBefore(second.as_of));
    });

    it('are announced once when a running run fails', async () => {
      const task = api.addTask(orch, { name: 'nightly' });
      const run = api.addRun(task, 'running');
      await activity.load();
      api.setRun(run, 'failure');
      await activity.load();
      await activity.load();
      expect(failed.map(f => [f.taskName, f.runId, f.status])).toEqual([
        ['nightly', run.run_id, 'failure']
      ]);
    });

    it('are announced for a run that started and failed between two looks', async () => {
      const task = api.addTask(orch);
      api.addRun(task, 'success');
      await activity.load();
      const run = api.addRun(task, 'timed_out');
      const created = api.addTask(orch);
      const other = api.addRun(created, 'failure');
      await activity.load();
      expect(failed.map(f => f.runId).sort()).toEqual(
        [run.run_id, other.run_id].sort()
      );
    });

    it('are announced in the order they ended, all of one look together', async () => {
      const task = api.addTask(orch, { name: 'many' });
      await activity.load();
      const runs = [1, 2, 3, 4, 5].map(() => api.addRun(task, 'failure'));
      await activity.load();
      expect(failed.map(f => f.runId)).toEqual(runs.map(r => r.run_id));
    });

    it('are not announced for a killed run', async () => {
      const task = api.addTask(orch);
      const run = api.addRun(task, 'running');
      await activity.load();
      api.setRun(run, 'killed');
      await activity.load();
      expect(failed).toEqual([]);
    });
  });

  describe('beside the paged task list', () => {
    let paged: OrchModel;

    beforeEach(() => {
      paged = new OrchModel({ api, pageSize: 3, maxPolledTasks: 6 });
    });

    afterEach(() => {
      paged.dispose();
    });

    it('counts and announces the runs of tasks that are not loaded', async () => {
      const [oldest] = addTasks(api, orch, 5);
      const run = api.addRun(oldest, 'running');
      const announced: IFailedRun[] = [];
      paged.activity.runFailed.connect((_, f) => announced.push(f));
      await paged.refresh();
      expect(names(paged.tasks.items)).toEqual(['t4', 't3', 't2']);
      expect(paged.activity.runningCount).toBe(1);
      api.setRun(run, 'timed_out');
      await paged.refresh();
      expect(paged.activity.runningCount).toBe(0);
      expect(announced).toEqual([
        {
          taskId: oldest.id,
          taskName: 't0',
          runId: run.run_id,
          status: 'timed_out'
        }
      ]);
      expect(names(paged.tasks.items)).toEqual(['t4', 't3', 't2']);
    });

    it('announces no old failure of a task seen for the first time', async () => {
      const old = makeOrch({ name: 'old' });
      api.orchestrations.push(old);
      const [failed] = addTasks(api, old, 1, 'o');
      api.addRun(failed, 'failure');
      addTasks(api, orch, 4);
      const announced: IFailedRun[] = [];
      paged.activity.runFailed.connect((_, f) => announced.push(f));
      await paged.refresh();
      await paged.refresh();
      paged.tasks.setOrchFilter(old.id);
      await until(() => paged.tasks.items.length === 1);
      await paged.refresh();
      expect(announced).toEqual([]);

      // a later failure of that task is announced
      api.addRun(failed, 'failure');
      await paged.refresh();
      expect(announced.map(f => f.taskName)).toEqual(['o0']);
    });
  });
});
