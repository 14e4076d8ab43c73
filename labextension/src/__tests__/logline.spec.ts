import { clockTime, LineJoiner, parseLogLine } from '../logline';

describe('parseLogLine', () => {
  it('splits time, stream, flag and text', () => {
    expect(
      parseLogLine('2026-11-25T02:59:58.695975328Z stderr P  two spaces')
    ).toEqual({
      time: '2026-11-25T02:59:58.695975328Z',
      stream: 'stderr',
      partial: true,
      text: ' two spaces'
    });
  });

  it('keeps an empty line empty', () => {
    expect(parseLogLine('2026-11-25T02:59:58.695975328Z stdout F ').text).toBe(
      ''
    );
  });

  it('keeps a line of another shape whole', () => {
    expect(parseLogLine('plain text')).toEqual({
      time: '',
      stream: 'stdout',
      partial: false,
      text: 'plain text'
    });
  });
});

describe('LineJoiner', () => {
  it('joins pieces per stream and flushes what is left', () => {
    const joiner = new LineJoiner();
    const t = '2026-01-01T00:00:00.000000000Z';
    expect(joiner.push(0, `${t} stdout P ab`)).toBeNull();
    expect(joiner.push(1, `${t} stderr F e`)?.text).toBe('e');
    expect(joiner.push(2, `${t} stdout F c`)).toEqual({
      n: 0,
      time: t,
      stream: 'stdout',
      text: 'abc'
    });
    expect(joiner.push(3, `${t} stdout P unfinished`)).toBeNull();
    expect(joiner.flush().map(l => l.text)).toEqual(['unfinished']);
    expect(joiner.flush()).toEqual([]);
  });
});

describe('clockTime', () => {
  it('reads nanosecond times', () => {
    expect(clockTime('2026-11-25T02:59:58.695975328Z')).toMatch(
      /^\d\d:\d\d:\d\d$/
    );
    expect(clockTime('not a time')).toBe('');
  });
});
