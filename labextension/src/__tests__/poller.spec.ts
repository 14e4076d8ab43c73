import { Poller } from '../poller';

describe('Poller', () => {
  /** When each tick started, in ms since the test began. */
  let ticks: number[];
  let failing: boolean;
  let started: number;
  let idle: boolean;
  let hidden: boolean;
  let poller: Poller;

  const tick = async (): Promise<void> => {
    ticks.push(Date.now() - started);
    if (failing) {
      throw new Error('down');
    }
  };

  function makePoller(options: Partial<Poller.IOptions> = {}): Poller {
    return new Poller({
      tick,
      interval: 1000,
      idleInterval: 5000,
      isIdle: () => idle,
      isHidden: () => hidden,
      ...options
    });
  }

  beforeEach(() => {
    jest.useFakeTimers();
    started = Date.now();
    ticks = [];
    failing = false;
    idle = false;
    hidden = false;
    poller = makePoller();
  });

  afterEach(() => {
    poller.dispose();
    jest.restoreAllMocks();
    jest.useRealTimers();
  });

  it('ticks at once, then every interval, until stopped', async () => {
    poller.start();
    await jest.advanceTimersByTimeAsync(3500);
    expect(ticks).toEqual([0, 1000, 2000, 3000]);
    poller.stop();
    expect(poller.isStarted).toBe(false);
    await jest.advanceTimersByTimeAsync(5000);
    expect(ticks.length).toBe(4);

    // started again: at once, then on
    poller.start();
    await jest.advanceTimersByTimeAsync(1500);
    expect(ticks.slice(4)).toEqual([8500, 9500]);
  });

  it('ticks less often while nobody looks, and at once when woken', async () => {
    idle = true;
    poller.start();
    await jest.advanceTimersByTimeAsync(9000);
    expect(ticks).toEqual([0, 5000]);
    idle = false;
    poller.wake();
    await jest.advanceTimersByTimeAsync(1500);
    expect(ticks).toEqual([0, 5000, 9000, 10000]);
  });

  it('is not woken before it starts, nor after it stops', async () => {
    poller.wake();
    await jest.advanceTimersByTimeAsync(2000);
    expect(ticks).toEqual([]);
    poller.start();
    await jest.advanceTimersByTimeAsync(10);
    poller.stop();
    poller.wake();
    await jest.advanceTimersByTimeAsync(5000);
    expect(ticks).toEqual([2000]);
  });

  it('stands by while the page is hidden, after one more tick', async () => {
    expect(poller.standby).toBe('when-hidden');
    poller.start();
    await jest.advanceTimersByTimeAsync(1500);
    expect(ticks).toEqual([0, 1000]);
    hidden = true;
    await jest.advanceTimersByTimeAsync(60000);
    expect(ticks).toEqual([0, 1000, 2000]);
    hidden = false;
    await jest.advanceTimersByTimeAsync(1000);
    expect(ticks).toEqual([0, 1000, 2000, 62000]);
  });

  it('backs off while ticks fail, up to the longest interval, and recovers', async () => {
    // the backoff picks a random delay up to three times the last: take the longest
    jest.spyOn(Math, 'random').mockReturnValue(0.9999);
    poller.dispose();
    poller = makePoller({ maxInterval: 8000 });
    poller.start();
    await jest.advanceTimersByTimeAsync(500);
    failing = true;
    await jest.advanceTimersByTimeAsync(20000);
    expect(ticks).toEqual([0, 1000, 4000, 12000, 20000]);
    failing = false;
    await jest.advanceTimersByTimeAsync(10000);
    expect(ticks.slice(5)).toEqual([28000, 29000, 30000]);
  });

  it('ticks no more once disposed', async () => {
    poller.start();
    await jest.advanceTimersByTimeAsync(10);
    poller.dispose();
    expect(poller.isDisposed).toBe(true);
    poller.start();
    poller.wake();
    await jest.advanceTimersByTimeAsync(5000);
    expect(ticks).toEqual([0]);
  });
});
