import { LoadQueue } from '../loadqueue';
import { OrchestrationsModel } from '../orchestrationsmodel';
import { TasksModel } from '../tasksmodel';
import { IOrchestration } from '../types';
import { addTasks, FakeApi, makeOrch, names, until } from './fakeapi';

/** The names of eight tasks made by `addTasks`, newest first. */
const EIGHT = ['t7', 't6', 't5', 't4', 't3', 't2', 't1', 't0'];

describe('TasksModel', () => {
  let api: FakeApi;
  let orch: IOrchestration;
  let queue: LoadQueue;
  let orchestrations: OrchestrationsModel;
  let tasks: TasksModel;
  /** How many times the model asked for a poll now. */
  let pollsAsked: number;

  /** A poll as the sidebar's model makes it: the orchestrations, then the loaded tasks. */
  const poll = (): Promise<void> =>
    queue.report(async () => {
      await orchestrations.loadWorkspaces(true);
      await orchestrations.load();
      (await tasks.fetch()).apply();
    });

  const refresh = (): Promise<void> => queue.run(poll, true);

  function makeTasks(options: Partial<TasksModel.IOptions> = {}): TasksModel {
    return new TasksModel({
      api,
      queue,
      orchestrations,
      pollNow: () => {
        pollsAsked += 1;
        void queue.run(poll, false);
      },
      pageSize: 3,
      maxPolledTasks: 6,
      ...options
    });
  }

  const taskCalls = (): string[] =>
    api.calls.filter(c => c.startsWith('tasks '));

  beforeEach(() => {
    api = new FakeApi();
    orch = makeOrch();
    api.orchestrations.push(orch);
    queue = new LoadQueue();
    orchestrations = new OrchestrationsModel({ api });
    pollsAsked = 0;
    tasks = makeTasks();
  });

  afterEach(() => {
    tasks.dispose();
    orchestrations.dispose();
    queue.dispose();
  });

  it('asks for the newest page of tasks with the runs of their sparklines', async () => {
    const plain = makeTasks({ pageSize: undefined, maxPolledTasks: undefined });
    try {
      (await plain.fetch()).apply();
      expect(taskCalls()).toEqual(['tasks 8 limit=100']);
    } finally {
      plain.dispose();
    }
  });

  it('signals only changes', async () => {
    api.addTask(orch, { name: 'first' });
    let changes = 0;
    tasks.changed.connect(() => (changes += 1));
    await refresh();
    expect(names(tasks.items)).toEqual(['first']);
    expect(tasks.count(orch.id)).toEqual({ count: 1, exact: true });
    await refresh();
    expect(changes).toBe(1);
    api.tasks[0].status = 'success';
    await refresh();
    expect(changes).toBe(2);
  });

  it('loads the newest page, and the next one only when asked', async () => {
    const made = addTasks(api, orch, 8);
    await refresh();
    expect(names(tasks.items)).toEqual(['t7', 't6', 't5']);
    expect(tasks.hasMore).toBe(true);
    expect(taskCalls()).toEqual(['tasks 8 limit=3']);

    await tasks.loadMore();
    expect(names(tasks.items)).toEqual(['t7', 't6', 't5', 't4', 't3', 't2']);
    await tasks.loadMore();
    expect(names(tasks.items)).toEqual(EIGHT);
    expect(tasks.hasMore).toBe(false);
    expect(taskCalls()).toEqual([
      'tasks 8 limit=3',
      `tasks 8 limit=3 after=${made[5].id}`,
      `tasks 8 limit=3 after=${made[2].id}`
    ]);

    // every task is loaded: nothing more is asked
    await tasks.loadMore();
    expect(taskCalls().length).toBe(3);
  });

  it('asks once for a page asked for twice, and says it is loading', async () => {
    addTasks(api, orch, 5);
    await refresh();
    const changes: boolean[] = [];
    tasks.changed.connect(() => changes.push(tasks.loadingMore));
    const first = tasks.loadMore();
    const second = tasks.loadMore();
    expect(tasks.loadingMore).toBe(true);
    await Promise.all([first, second]);
    expect(tasks.loadingMore).toBe(false);
    expect(taskCalls().filter(c => c.includes('after=')).length).toBe(1);
    expect(tasks.items.length).toBe(5);
    expect(changes[0]).toBe(true);
    expect(changes[changes.length - 1]).toBe(false);
  });

  it('polls as many tasks as are loaded, up to the cap', async () => {
    const made = addTasks(api, orch, 8);
    await refresh();
    await tasks.loadMore();
    api.calls = [];
    await refresh();
    expect(taskCalls()).toEqual(['tasks 8 limit=6']);
    expect(tasks.items.length).toBe(6);

    await tasks.loadMore();
    api.calls = [];
    made[0].status = 'success';
    made[7].status = 'success';
    await refresh();
    // nine wanted, six polled: the two oldest keep their last known state
    expect(taskCalls()).toEqual(['tasks 8 limit=6']);
    expect(names(tasks.items)).toEqual(EIGHT);
    expect(tasks.task(made[7].id)?.status).toBe('success');
    expect(tasks.task(made[0].id)?.status).toBe('started');
    expect(tasks.hasMore).toBe(false);
  });

  it('keeps as many tasks as loaded when new ones come', async () => {
    addTasks(api, orch, 5);
    await refresh();
    expect(names(tasks.items)).toEqual(['t4', 't3', 't2']);
    api.addTask(orch, { name: 'new' });
    await refresh();
    expect(names(tasks.items)).toEqual(['new', 't4', 't3']);
    expect(tasks.hasMore).toBe(true);
    await tasks.loadMore();
    expect(names(tasks.items)).toEqual(['new', 't4', 't3', 't2', 't1', 't0']);
  });

  it('shows every task of a short list, with no more to load', async () => {
    addTasks(api, orch, 2);
    await refresh();
    expect(names(tasks.items)).toEqual(['t1', 't0']);
    expect(tasks.hasMore).toBe(false);
    expect(tasks.count(orch.id)).toEqual({ count: 2, exact: true });
  });

  it('forgets deleted tasks, and loads on from the polled ones when the oldest is gone', async () => {
    const made = addTasks(api, orch, 10);
    tasks.dispose();
    tasks = makeTasks({ maxPolledTasks: 3 });
    await refresh();
    await tasks.loadMore();
    expect(names(tasks.items)).toEqual(['t9', 't8', 't7', 't6', 't5', 't4']);
    // t4 is past the polled three: its deletion goes unseen until a page starts there
    api.tasks = api.tasks.filter(t => t.id !== made[4].id);
    api.tasks = api.tasks.filter(t => t.id !== made[8].id);
    await refresh();
    expect(names(tasks.items)).toEqual(['t9', 't7', 't6', 't5', 't4']);
    await tasks.loadMore();
    expect(names(tasks.items)).toEqual(['t9', 't7', 't6', 't5', 't3', 't2']);
    expect(queue.error).toBeNull();
  });

  it('says why a page failed, until one works', async () => {
    addTasks(api, orch, 5);
    await refresh();
    api.failure = new Error('500: database is locked');
    await expect(tasks.loadMore()).rejects.toThrow('database is locked');
    expect(queue.error).toBe('500: database is locked');
    expect(tasks.loadingMore).toBe(false);
    api.failure = null;
    await tasks.loadMore();
    expect(queue.error).toBeNull();
    expect(tasks.items.length).toBe(5);
  });

  it('shows a fresher record of a loaded task', async () => {
    const made = addTasks(api, orch, 2);
    await refresh();
    let changes = 0;
    tasks.changed.connect(() => (changes += 1));
    tasks.replace({ ...made[0], status: 'paused' });
    expect(tasks.task(made[0].id)?.status).toBe('paused');
    expect(changes).toBe(1);
    // a task not loaded is not added
    tasks.replace({ ...made[0], id: 'elsewhere' });
    expect(tasks.task('elsewhere')).toBeNull();
    expect(changes).toBe(1);
  });

  it('filters by orchestration and forgets a filter whose orchestration is gone', async () => {
    api.addTask(orch);
    await refresh();
    let changes = 0;
    tasks.filterChanged.connect(() => (changes += 1));
    tasks.setOrchFilter(orch.id);
    expect(tasks.orchFilter).toBe(orch.id);
    api.orchestrations = [];
    api.tasks = [];
    await refresh();
    expect(tasks.orchFilter).toBeNull();
    expect(changes).toBe(2);
  });

  it("pages an orchestration's tasks on their own", async () => {
    const old = makeOrch({ name: 'old' });
    api.orchestrations.push(old);
    const mine = addTasks(api, old, 5, 'o');
    addTasks(api, orch, 4, 'x');
    await refresh();
    expect(tasks.count(old.id)).toEqual({ count: 0, exact: false });

    let filterChanges = 0;
    tasks.filterChanged.connect(() => (filterChanges += 1));
    tasks.setOrchFilter(old.id);
    expect(tasks.items).toEqual([]);
    expect(tasks.hasMore).toBe(true);
    expect(pollsAsked).toBe(1);
    await until(() => tasks.items.length === 3);
    expect(names(tasks.items)).toEqual(['o4', 'o3', 'o2']);
    expect(taskCalls()).toContain(`tasks 8 limit=3 orch=${old.id}`);
    expect(tasks.count(old.id)).toEqual({ count: 3, exact: false });

    await tasks.loadMore();
    expect(names(tasks.items)).toEqual(['o4', 'o3', 'o2', 'o1', 'o0']);
    expect(taskCalls()).toContain(
      `tasks 8 limit=3 after=${mine[2].id} orch=${old.id}`
    );
    expect(tasks.count(old.id)).toEqual({ count: 5, exact: true });

    // a poll asks for the five shown, and for every task's newest page
    api.calls = [];
    await refresh();
    expect(taskCalls().sort()).toEqual(
      ['tasks 8 limit=3', `tasks 8 limit=6 orch=${old.id}`].sort()
    );

    tasks.setOrchFilter(null);
    expect(names(tasks.items)).toEqual(['x3', 'x2', 'x1']);
    expect(filterChanges).toBe(2);
  });

  it("shows an orchestration's loaded tasks at once", async () => {
    addTasks(api, orch, 2);
    await refresh();
    api.calls = [];
    tasks.setOrchFilter(orch.id);
    expect(names(tasks.items)).toEqual(['t1', 't0']);
    expect(tasks.hasMore).toBe(false);
    // every task was loaded: nothing to fetch before the next poll
    expect(pollsAsked).toBe(0);
    expect(api.calls).toEqual([]);
    await refresh();
    expect(taskCalls()).toContain(`tasks 8 limit=3 orch=${orch.id}`);
  });
});
