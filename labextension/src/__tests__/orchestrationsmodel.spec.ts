import { OrchestrationsModel } from '../orchestrationsmodel';
import { FakeApi, makeOrch } from './fakeapi';

describe('OrchestrationsModel', () => {
  let api: FakeApi;
  let orchestrations: OrchestrationsModel;
  let changes: number;

  beforeEach(() => {
    api = new FakeApi();
    orchestrations = new OrchestrationsModel({ api });
    changes = 0;
    orchestrations.changed.connect(() => (changes += 1));
  });

  afterEach(() => {
    orchestrations.dispose();
  });

  it('lists the orchestrations of every workspace, newest first, and signals only changes', async () => {
    api.workspaces.push({ ...api.workspaces[0], id: 2, name: 'team' });
    const old = makeOrch({ name: 'old', created_at: '2026-01-01T00:00:00Z' });
    const young = makeOrch({
      name: 'young',
      workspace_id: 2,
      created_at: '2026-02-01T00:00:00Z'
    });
    api.orchestrations.push(old, young);
    await orchestrations.loadWorkspaces(false);
    await orchestrations.load();
    expect(orchestrations.items.map(o => o.name)).toEqual(['young', 'old']);
    expect(orchestrations.get(old.id)?.name).toBe('old');
    expect(orchestrations.has('unknown')).toBe(false);
    expect(api.calls).toEqual([
      'workspaces',
      'orchestrations 1',
      'orchestrations 2'
    ]);
    expect(changes).toBe(1);

    await orchestrations.load();
    expect(changes).toBe(1);
    old.status = 'error';
    await orchestrations.load();
    expect(changes).toBe(2);
  });

  it('asks for the workspaces when told to, or while none is known', async () => {
    await orchestrations.loadWorkspaces(false);
    await orchestrations.loadWorkspaces(false);
    expect(api.calls).toEqual(['workspaces']);
    await orchestrations.loadWorkspaces(true);
    expect(api.calls).toEqual(['workspaces', 'workspaces']);
  });

  it('is stale while one is packaged, or when a task names an unknown one', async () => {
    const orch = makeOrch({ status: 'packaging' });
    api.orchestrations.push(orch);
    await orchestrations.loadWorkspaces(false);
    await orchestrations.load();
    expect(orchestrations.isStale([])).toBe(true);
    orch.status = 'ready';
    await orchestrations.load();
    expect(orchestrations.isStale([])).toBe(false);
    const known = api.addTask(orch);
    const unknown = api.addTask(makeOrch());
    expect(orchestrations.isStale([known])).toBe(false);
    expect(orchestrations.isStale([known, unknown])).toBe(true);
  });
});
