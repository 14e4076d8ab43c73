import {
  ConnectionsModel,
  IConnectionsApi,
  IConnectionSummary,
  parseDetails,
  summarise
} from '../connectionsmodel';

const SECRET = 'hunter2-in-the-form';

/** An API that keeps what it was given, and can be told to fail. */
class FakeApi implements IConnectionsApi {
  made: [string, string, Record<string, unknown>][] = [];
  failWith: string | null = null;

  async list(): Promise<IConnectionSummary[]> {
    if (this.failWith) {
      throw new Error(this.failWith);
    }
    return this.made.map(([name, type], i) => ({
      id: `id-${i}`,
      name,
      type,
      workspaceNames: []
    }));
  }

  async create(
    name: string,
    type: string,
    details: Record<string, unknown>
  ): Promise<void> {
    if (this.failWith) {
      throw new Error(this.failWith);
    }
    this.made.push([name, type, details]);
  }
}

describe('the connections section', () => {
  it('keeps a connection without its details', () => {
    const summary = summarise({
      id: 'c1',
      name: 'db',
      type: 'ODBC',
      details: { password: SECRET },
      created_at: '2026-12-03T10:00:00+00:00',
      workspace_names: ['default']
    });
    expect(summary).toEqual({
      id: 'c1',
      name: 'db',
      type: 'ODBC',
      workspaceNames: ['default']
    });
    expect(JSON.stringify(summary)).not.toContain(SECRET);
  });

  it('reads details as a JSON object, and never repeats them in a message', () => {
    expect(parseDetails('  ')).toEqual({});
    expect(parseDetails('{"token": "t"}')).toEqual({ token: 't' });
    for (const text of [`{"token": ${SECRET}}`, `["${SECRET}"]`, 'null']) {
      const problem = parseDetails(text);
      expect(typeof problem).toBe('string');
      expect(problem).not.toContain(SECRET);
    }
  });

  it('creates a connection, then lists it by name and type', async () => {
    const api = new FakeApi();
    const model = new ConnectionsModel(api);
    let changes = 0;
    model.changed.connect(() => changes++);
    const text = `{"password": "${SECRET}"}`;
    expect(await model.create(' db ', 'ODBC', text)).toBeNull();
    expect(api.made).toEqual([['db', 'ODBC', { password: SECRET }]]);
    expect(model.items.map(c => [c.name, c.type])).toEqual([['db', 'ODBC']]);
    expect(changes).toBe(1);
  });

  it('refuses a form without a name, type or valid details, sending nothing', async () => {
    const api = new FakeApi();
    const model = new ConnectionsModel(api);
    expect(await model.create('', 'HTTP', '')).toMatch(/name and a type/);
    expect(await model.create('x', 'HTTP', '[1]')).toMatch(/JSON object/);
    expect(api.made).toEqual([]);
  });

  it("gives the server's message when a call fails", async () => {
    const api = new FakeApi();
    const model = new ConnectionsModel(api);
    api.failWith = "a connection named 'db' already exists";
    expect(await model.create('db', 'HTTP', '')).toBe(api.failWith);
    await model.refresh();
    expect(model.error).toBe(api.failWith);
    api.failWith = null;
    await model.refresh();
    expect(model.error).toBeNull();
  });
});
