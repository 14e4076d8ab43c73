import { Signal } from '@lumino/signaling';

import { ActivityModel, IFailedRun } from '../activitymodel';
import { CommandIDs } from '../commandids';
import { FailureNotifier } from '../notify';

type Action = { label: string; callback: () => void };
const mockShown: { message: string; actions: Action[] }[] = [];

jest.mock('@jupyterlab/apputils', () => ({
  Notification: {
    error: (message: string, options: { actions: Action[] }) => {
      mockShown.push({ message, actions: options.actions });
    }
  }
}));

/** The activity model's side of the notifier: only its signal. */
class FakeActivity {
  readonly runFailed = new Signal<this, IFailedRun>(this);
}

function failure(n: number, name: string | null = `job ${n}`): IFailedRun {
  const id = `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
  return { taskId: id, taskName: name, runId: `run-${n}`, status: 'failure' };
}

describe('FailureNotifier', () => {
  let model: FakeActivity;
  let executed: [string, unknown][];
  let notifier: FailureNotifier;

  beforeEach(() => {
    mockShown.length = 0;
    executed = [];
    model = new FakeActivity();
    const commands = {
      execute: async (id: string, args?: unknown) => {
        executed.push([id, args]);
      }
    };
    notifier = new FailureNotifier(
      model as unknown as ActivityModel,
      commands as never
    );
  });

  afterEach(() => {
    notifier.dispose();
  });

  it('tells a few failures one by one, each opening its log', async () => {
    model.runFailed.emit(failure(1));
    model.runFailed.emit({ ...failure(2, null), status: 'timed_out' });
    await Promise.resolve();
    expect(mockShown.map(s => s.message)).toEqual([
      'Task “job 1”: a run failed.',
      'Task “task 00000000”: a run timed out.'
    ]);
    mockShown[0].actions[0].callback();
    expect(executed).toEqual([
      [CommandIDs.openRun, { taskId: failure(1).taskId, runId: 'run-1' }],
      [CommandIDs.openTask, { taskId: failure(1).taskId, runId: 'run-1' }]
    ]);
  });

  it('tells many failures of one look in one notification', async () => {
    for (const n of [1, 2, 2, 3, 4, 5]) {
      model.runFailed.emit(failure(n));
    }
    await Promise.resolve();
    expect(mockShown.map(s => s.message)).toEqual([
      '6 runs failed or timed out (tasks “job 1”, “job 2”, “job 3” and 2 more).'
    ]);
    mockShown[0].actions[0].callback();
    expect(executed).toEqual([[CommandIDs.open, undefined]]);

    // the next look starts afresh
    model.runFailed.emit(failure(7));
    await Promise.resolve();
    expect(mockShown.map(s => s.message)[1]).toBe(
      'Task “job 7”: a run failed.'
    );
  });

  it('tells nothing once disposed', async () => {
    model.runFailed.emit(failure(1));
    notifier.dispose();
    await Promise.resolve();
    expect(mockShown).toEqual([]);
  });
});
