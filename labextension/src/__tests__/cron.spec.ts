import { cronProblem, describeCron } from '../cron';

describe('describeCron', () => {
  it.each([
    ['* * * * *', 'every minute'],
    ['*/5 * * * *', 'every 5 minutes'],
    ['0/15 * * * *', 'every 15 minutes'],
    ['0 * * * *', 'every hour'],
    ['30 * * * *', 'every hour at minute 30'],
    ['0 */2 * * *', 'every 2 hours'],
    ['15 */6 * * *', 'every 6 hours at minute 15'],
    ['30 9 * * *', 'every day at 09:30'],
    ['0 9,17 * * *', 'every day at 09:00 and 17:00'],
    ['0 9 * * 1-5', 'weekdays at 09:00'],
    ['0 9 * * MON-FRI', 'weekdays at 09:00'],
    ['0 10 * * 0,6', 'weekends at 10:00'],
    ['0 10 * * 6,7', 'weekends at 10:00'],
    ['0 8 * * 1', 'every Monday at 08:00'],
    ['0 8 * * mon,wed,fri', 'every Monday, Wednesday and Friday at 08:00'],
    ['0 0 1 * *', 'on day 1 of every month at 00:00'],
    ['0 6 1,15 * *', 'on day 1 and 15 of every month at 06:00'],
    ['0 0 1 1 *', 'on day 1 of January at 00:00'],
    ['* * * * * *', 'every second'],
    ['*/10 * * * * *', 'every 10 seconds'],
    ['0 */5 * * * *', 'every 5 minutes'],
    ['0 0 12 * * *', 'every day at 12:00'],
    ['@hourly', 'every hour'],
    ['@daily', 'every day at 00:00'],
    ['@weekly', 'every Sunday at 00:00'],
    ['@monthly', 'on day 1 of every month at 00:00'],
    ['@yearly', 'every year on January 1 at 00:00'],
    ['  */5   *  * * *  ', 'every 5 minutes']
  ])('%s is "%s"', (expr, text) => {
    expect(describeCron(expr)).toBe(text);
  });

  it.each([
    '5-10 * * * *',
    '0 9 * * 1#2',
    '0 9 L * *',
    '0 9 1 * 1',
    '30 * * * * *',
    '@reboot',
    'nonsense'
  ])('%s is shown as written', expr => {
    expect(describeCron(expr)).toBe(expr);
  });
});

describe('cronProblem', () => {
  it('accepts five or six fields and the macros', () => {
    expect(cronProblem('*/5 * * * *')).toBeNull();
    expect(cronProblem('*/5 * * * * *')).toBeNull();
    expect(cronProblem('@daily')).toBeNull();
  });

  it('names what is wrong', () => {
    expect(cronProblem('')).toBe('a schedule is needed');
    expect(cronProblem('* * *')).toBe(
      '5 fields (6 with seconds first) are needed, not 3'
    );
    expect(cronProblem('@sometimes')).toBe('unknown macro @sometimes');
  });
});

describe('cronProblem, field by field', () => {
  it.each([
    ['61 * * * *', /^minute: "61" is not between 0 and 59$/],
    ['0 24 * * *', /hour.*"24"/],
    ['0 0 0 * *', /day of month.*"0" is not between 1 and 31/],
    ['0 0 * 13 *', /month.*"13"/],
    ['0 0 * * 8', /day of week.*"8"/],
    ['60 * * * * *', /second.*"60"/],
    ['0 10-5 * * *', /goes backwards/],
    ['*/0 * * * *', /step/],
    ['x * * * *', /minute.*"x"/]
  ])('refuses %s', (expr, message) => {
    expect(cronProblem(expr)).toMatch(message);
  });

  it.each([
    '59 23 31 12 7',
    '*/15 9-17 * jan-mar mon-fri',
    '0 0 L * *',
    '0 0 * * 5#3',
    '0,30 */2 1,15 * *',
    '*/2 * * * * *'
  ])('takes %s', expr => {
    expect(cronProblem(expr)).toBeNull();
  });
});
