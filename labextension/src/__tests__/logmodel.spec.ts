import { ILogChange, IRunEnd, LogModel } from '../logmodel';
import { IOrchestration } from '../types';
import { FakeApi, makeOrch, raw, until } from './fakeapi';

describe('LogModel', () => {
  let api: FakeApi;
  let log: LogModel;
  let orch: IOrchestration;
  let changes: ILogChange[];
  let ends: IRunEnd[];

  beforeEach(() => {
    api = new FakeApi();
    log = new LogModel({ api });
    orch = makeOrch();
    api.orchestrations.push(orch);
    changes = [];
    ends = [];
    log.changed.connect((_, change) => changes.push(change));
    log.ended.connect((_, end) => ends.push(end));
  });

  afterEach(() => {
    log.dispose();
  });

  it("reads an ended run's whole log and says it ended", async () => {
    const run = api.addRun(api.addTask(orch), 'failure', [
      raw('hello'),
      raw('oops', 'stderr')
    ]);
    expect(log.state).toBe('idle');
    log.follow(run.run_id);
    expect(log.state).toBe('following');
    await until(() => log.state === 'ended');
    expect(log.lines.map(l => [l.stream, l.text])).toEqual([
      ['stdout', 'hello'],
      ['stderr', 'oops']
    ]);
    expect(ends).toEqual([{ runId: run.run_id, status: 'failure' }]);
    expect(changes[0]).toEqual({ reset: true, added: [] });
  });

  it('joins the pieces of a long line', async () => {
    const run = api.addRun(api.addTask(orch), 'success', [
      raw('abc', 'stdout', 'P'),
      raw('err', 'stderr'),
      raw('def', 'stdout', 'P'),
      raw('ghi')
    ]);
    log.follow(run.run_id);
    await until(() => log.state === 'ended');
    expect(log.lines.map(l => [l.n, l.text])).toEqual([
      [1, 'err'],
      [0, 'abcdefghi']
    ]);
  });

  it('clears the log and stops following', async () => {
    const run = api.addRun(api.addTask(orch), 'running', [raw('one')]);
    log.follow(run.run_id);
    await until(() => log.lines.length === 1);
    log.clear();
    expect([log.state, log.lines.length]).toEqual(['idle', 0]);
    api.follows[0].send({ n: 1, line: raw('two') });
    api.follows[0].close();
    await new Promise(resolve => setTimeout(resolve, 100));
    expect([log.state, log.lines.length, api.follows.length]).toEqual([
      'idle',
      0,
      1
    ]);
  });

  it('keeps the newest lines of a very long log', async () => {
    const lines = Array.from({ length: 25 }, (_, i) => raw(`line ${i}`));
    const short = new LogModel({ api, maxLines: 10 });
    try {
      short.follow(api.addRun(api.addTask(orch), 'success', lines).run_id);
      await until(() => short.state === 'ended');
      // past 10 lines, the log keeps 9: the oldest are dropped, and counted
      expect(short.lines.map(l => l.text)).toEqual(
        Array.from({ length: 9 }, (_, i) => `line ${16 + i}`)
      );
      expect(short.dropped).toBe(16);
    } finally {
      short.dispose();
    }
  });

  describe('with fake timers', () => {
    beforeEach(() => {
      jest.useFakeTimers();
    });

    afterEach(() => {
      jest.useRealTimers();
    });

    it('follows a running run live and resumes after a broken connection', async () => {
      const task = api.addTask(orch, { run_type: 'NetworkService' });
      const run = api.addRun(task, 'running', [raw('one')]);
      log.follow(run.run_id);
      // lines are shown in batches of 50 ms
      await jest.advanceTimersByTimeAsync(50);
      expect(api.follows.length).toBe(1);
      expect(log.lines.length).toBe(1);
      expect(log.state).toBe('following');

      api.logs.get(run.run_id)?.push(raw('two'));
      api.follows[0].send({ n: 1, line: raw('two') });
      await jest.advanceTimersByTimeAsync(50);
      expect(log.lines.length).toBe(2);
      expect(changes[changes.length - 1].added.map(l => l.text)).toEqual([
        'two'
      ]);

      // the connection breaks: the model asks again from the next line, a second later
      api.follows[0].close();
      await jest.advanceTimersByTimeAsync(990);
      expect(api.follows.length).toBe(1);
      await jest.advanceTimersByTimeAsync(10);
      expect(api.follows.length).toBe(2);
      expect(api.follows[1].from).toBe(2);

      api.setRun(run, 'success');
      api.follows[1].send({ end: true, status: 'success', next: 2 });
      api.follows[1].close();
      await jest.advanceTimersByTimeAsync(0);
      expect(log.state).toBe('ended');
      expect(log.lines.map(l => l.text)).toEqual(['one', 'two']);
      expect(ends).toEqual([{ runId: run.run_id, status: 'success' }]);
    });

    it('gives up after five broken connections in a row, waiting longer each time', async () => {
      const run = api.addRun(api.addTask(orch), 'running');
      api.failure = new Error('502: bad gateway');
      log.follow(run.run_id);
      const tries = () => api.calls.filter(c => c.startsWith('follow')).length;
      await jest.advanceTimersByTimeAsync(10);
      expect(tries()).toBe(1);
      // waits of 1, 2, 4, 8 and 8 s
      await jest.advanceTimersByTimeAsync(1000);
      expect(tries()).toBe(2);
      await jest.advanceTimersByTimeAsync(2000 + 4000 + 8000 - 20);
      expect(tries()).toBe(4);
      expect(log.state).toBe('following');
      await jest.advanceTimersByTimeAsync(20);
      expect(tries()).toBe(5);
      await jest.advanceTimersByTimeAsync(8000);
      expect(tries()).toBe(6);
      expect(log.state).toBe('error');
      expect(log.error).toBe('502: bad gateway');
      await jest.advanceTimersByTimeAsync(60000);
      expect(tries()).toBe(6);
    });
  });
});
