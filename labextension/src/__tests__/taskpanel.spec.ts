/**
 * The task view's parts that need no browser layout: its model against a fake server, the
 * chart's slots, the log search, the edit form's changes, the schedule presets.
 */
import { chartSlots, runSeconds } from '../runchart';
import { findMatches, joinRawLines, logText } from '../logtext';
import { presetCron, presetOf, zoneProblem } from '../schedulefield';
import { changesOf, changeText, editValues } from '../taskedit';
import { TaskPanelModel } from '../taskpanelmodel';
import { summarySeconds } from '../sparkline';
import { ITask } from '../types';
import { FakeApi, makeOrch, makeRun, raw, until } from './fakeapi';
import { FakeTaskApi } from './faketaskapi';

describe('TaskPanelModel', () => {
  let api: FakeApi;
  let taskApi: FakeTaskApi;
  let model: TaskPanelModel;
  let task: ITask;

  beforeEach(() => {
    api = new FakeApi();
    taskApi = new FakeTaskApi(api);
    const orch = makeOrch();
    api.orchestrations.push(orch);
    task = api.addTask(orch, { run_type: 'CronJob', schedule: '0 9 * * *' });
    model = new TaskPanelModel({ taskId: task.id, api, taskApi });
  });

  afterEach(() => model.dispose());

  it('loads the task, lists its runs and follows the newest run', async () => {
    api.addRun(task, 'failure', [raw('old', 'stderr')]);
    const newest = api.addRun(task, 'success', [raw('hello'), raw('world')]);
    await model.refresh();
    expect(model.task?.id).toBe(task.id);
    expect(model.runs.items.map(r => r.run_id)[0]).toBe(newest.run_id);
    expect(model.selectedRunId).toBe(newest.run_id);
    await until(() => model.log.state === 'ended');
    expect(model.log.lines.map(l => l.text)).toEqual(['hello', 'world']);
  });

  it('keeps a run the user chose when a newer one starts', async () => {
    const first = api.addRun(task, 'success');
    api.addRun(task, 'success');
    await model.refresh();
    model.selectRun(first.run_id);
    api.addRun(task, 'running');
    await model.refresh();
    expect(model.selectedRunId).toBe(first.run_id);
  });

  it('runs a run again and selects the new run', async () => {
    const run = api.addRun(task, 'failure');
    await model.refresh();
    const answer = await model.rerun(run.run_id, { name: 'x' });
    expect(taskApi.reruns).toEqual([[run.run_id, { name: 'x' }]]);
    expect(answer.id).toBe(task.id);
    expect(model.selectedRunId).toBe(answer.run_id);
  });

  it('sends a change and shows the task as the server answers it', async () => {
    await model.refresh();
    await model.update({ timeout: 120 });
    expect(taskApi.updates).toEqual([{ id: task.id, timeout: 120 }]);
    expect(model.task?.timeout).toBe(120);
  });

  it('says so when the task is gone', async () => {
    api.tasks.length = 0;
    await model.refresh();
    expect(model.gone).toBe(true);
    expect(model.error).toMatch(/not found/);
  });
});

describe('chartSlots', () => {
  it('puts runs oldest first, with the skipped instants between them', () => {
    const a = makeRun('t', 'success', {
      created_at: '2026-01-01T09:00:00Z',
      started_at: '2026-01-01T09:00:00Z',
      ended_at: '2026-01-01T09:00:30Z'
    });
    const b = makeRun('t', 'failure', {
      created_at: '2026-01-01T11:00:00Z',
      started_at: '2026-01-01T11:00:00Z',
      ended_at: '2026-01-01T11:01:00Z'
    });
    const skip = (at: string) => ({
      task: 't',
      scheduled_for: at,
      reason: 'missed',
      recorded_at: at
    });
    const slots = chartSlots(
      [b, a],
      [skip('2026-01-01T10:00:00Z'), skip('2026-01-01T08:00:00Z')]
    );
    expect(slots.map(s => s.kind)).toEqual(['run', 'skip', 'run']);
    expect(slots.map(s => (s.kind === 'run' ? s.seconds : null))).toEqual([
      30,
      null,
      60
    ]);
  });

  it('measures a run going until now', () => {
    const run = makeRun('t', 'running', {
      started_at: '2026-01-01T09:00:00Z'
    });
    expect(runSeconds(run, Date.parse('2026-01-01T09:00:42Z'))).toBe(42);
    expect(
      summarySeconds(
        {
          run_id: 'r',
          status: 'running',
          created_at: '2026-01-01T09:00:00Z',
          updated_at: '2026-01-01T09:00:01Z'
        },
        Date.parse('2026-01-01T09:01:00Z')
      )
    ).toBe(60);
  });
});

describe('the log pane', () => {
  it('finds every match, whatever the case', () => {
    expect(findMatches('Error: error ERROR', 'error')).toEqual([
      [0, 5],
      [7, 12],
      [13, 18]
    ]);
    expect(findMatches('abc', '')).toEqual([]);
  });

  it('joins the pieces of long lines and writes them as a file', () => {
    const lines = joinRawLines([
      raw('one'),
      raw('lo', 'stdout', 'P'),
      raw('ng', 'stdout', 'F'),
      raw('oops', 'stderr')
    ]);
    expect(lines.map(l => [l.stream, l.text])).toEqual([
      ['stdout', 'one'],
      ['stdout', 'long'],
      ['stderr', 'oops']
    ]);
    expect(logText(lines).split('\n')[2]).toMatch(/ stderr oops$/);
  });
});

describe('the edit form', () => {
  const orch = makeOrch();
  const base = new FakeApi().addTask(orch, {
    run_type: 'CronJob',
    schedule: '0 9 * * *',
    timezone: 'Europe/Paris',
    input_data: { a: 1 },
    timeout: 60
  });

  it('sends only what changed', () => {
    const values = editValues(base);
    expect(changesOf(base, values)).toEqual({ changes: {} });
    const changed = changesOf(base, {
      ...values,
      schedule: '30  9 * * 1-5',
      args: '{"a": 2}',
      timeout: '',
      keep_runs: '5'
    });
    expect(changed).toEqual({
      changes: {
        schedule: '30 9 * * 1-5',
        json: { a: 2 },
        timeout: null,
        keep_runs: 5
      }
    });
  });

  it('names what is wrong', () => {
    const result = changesOf(base, {
      ...editValues(base),
      args: '[1]',
      keep_days: '-1'
    });
    expect(result).toEqual({
      problems: [
        expect.stringMatching(/^arguments/),
        expect.stringMatching(/^days kept/)
      ]
    });
  });

  it('tells a change of the history in words', () => {
    expect(
      changeText({ at: '', by: 'me', changes: { timeout: [60, null] } })
    ).toEqual(['timeout: 60 → none']);
  });
});

describe('schedule presets', () => {
  it.each([
    ['hourly', '08:15', '0 * * * *'],
    ['daily', '08:15', '15 8 * * *'],
    ['weekdays', '17:05', '5 17 * * 1-5']
  ])('%s at %s is %s, and reads back', (id, time, cron) => {
    expect(presetCron(id, time)).toBe(cron);
    expect(presetOf(cron).id).toBe(id);
  });

  it('knows a custom schedule', () => {
    expect(presetCron('custom', '09:00')).toBeNull();
    expect(presetOf('*/5 * * * *')).toEqual({ id: 'custom', time: null });
    expect(presetOf('0 9 * * 1-5')).toEqual({ id: 'weekdays', time: '09:00' });
  });

  it('checks a time zone against the known ones', () => {
    expect(zoneProblem('Europe/Paris', ['Europe/Paris'])).toBeNull();
    expect(zoneProblem('UTC', ['Europe/Paris'])).toBeNull();
    expect(zoneProblem('Mars/Olympus', ['Europe/Paris'])).toMatch(/unknown/);
  });
});
