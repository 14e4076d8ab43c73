import {
  defaultForm,
  formProblems,
  isNotebook,
  notebookNote,
  taskFromForm
} from '../taskform';

const target = { id: 'orch-1', name: 'hello', workspace_id: 3 };

describe('the new-task form', () => {
  it('makes a run-once request with arguments and a timeout', () => {
    const form = {
      ...defaultForm('hello', 'UTC'),
      args: '{"name": "Jupyter"}',
      timeout: '30'
    };
    expect(taskFromForm(form, target)).toEqual({
      kind: 'once',
      request: {
        orch_id: 'orch-1',
        workspace_id: 3,
        json: { name: 'Jupyter' },
        name: 'hello',
        timeout: 30
      }
    });
  });

  it('makes a scheduled request with its time zone', () => {
    const form = {
      ...defaultForm('nightly', 'Europe/Paris'),
      kind: 'scheduled' as const,
      schedule: ' 0 3 * * * '
    };
    expect(taskFromForm(form, target)).toEqual({
      kind: 'scheduled',
      request: {
        orch_id: 'orch-1',
        workspace_id: 3,
        json: {},
        name: 'nightly',
        schedule: '0 3 * * *',
        timezone: 'Europe/Paris'
      }
    });
  });

  it('names the executor when one is typed', () => {
    const form = { ...defaultForm('big', 'UTC'), executor: ' dask ' };
    expect(taskFromForm(form, target).request.executor).toBe('dask');
    expect(
      taskFromForm(defaultForm('big', 'UTC'), target).request
    ).not.toHaveProperty('executor');
  });

  it('leaves out an empty name and timeout', () => {
    const form = { ...defaultForm('', 'UTC'), kind: 'continuous' as const };
    expect(taskFromForm(form, target)).toEqual({
      kind: 'continuous',
      request: { orch_id: 'orch-1', workspace_id: 3, json: {} }
    });
  });

  it('names every problem', () => {
    const form = {
      ...defaultForm('x', 'UTC'),
      kind: 'scheduled' as const,
      args: '[1, 2]',
      timeout: '-4',
      schedule: '* *'
    };
    expect(formProblems(form)).toEqual([
      'arguments: a JSON object is needed, such as {"name": "world"}',
      'timeout: a whole number of seconds, 1 or more (empty: none)',
      'schedule: 5 fields (6 with seconds first) are needed, not 2'
    ]);
    expect(() => taskFromForm(form, target)).toThrow('arguments:');
  });

  it('says when the arguments are not JSON', () => {
    const problems = formProblems({
      ...defaultForm('x', 'UTC'),
      args: '{oops'
    });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^arguments: /);
  });
});

describe('the note on a notebook', () => {
  it('says the notebook becomes main.ipynb when one was packaged', () => {
    const note = notebookNote({ ...target, source: 'work/analysis.ipynb' });
    expect(note).toMatch(
      /^The notebook work\/analysis.ipynb becomes main.ipynb of the orchestration/
    );
    expect(note).toMatch(/Open output/);
    expect(note).toMatch(/tagged "parameters"/);
  });

  it("names the orchestration's notebook entrypoint", () => {
    const note = notebookNote({
      ...target,
      entrypoint: 'reports/weekly.ipynb'
    });
    expect(note).toMatch(
      /^Each run executes the notebook reports\/weekly.ipynb/
    );
  });

  it('says nothing for code', () => {
    expect(notebookNote(target)).toBeNull();
    expect(notebookNote({ ...target, entrypoint: 'main.py' })).toBeNull();
    expect(notebookNote({ ...target, source: 'work/folder' })).toBeNull();
  });

  it('knows a notebook by its extension', () => {
    expect(isNotebook('main.ipynb')).toBe(true);
    expect(isNotebook('a/B.IPYNB')).toBe(true);
    expect(isNotebook('main.py')).toBe(false);
    expect(isNotebook('ipynb')).toBe(false);
  });
});
