import type { ServerConnection } from '@jupyterlab/services';

import { isNotFound } from '../errors';
import {
  isOutputPath,
  OUTPUT_DRIVE,
  OutputDrive,
  outputPath,
  runIdOf
} from '../outputdrive';
import { FakeApi, makeNotebook, makeOrch } from './fakeapi';

const settings = {
  baseUrl: 'http://127.0.0.1:8888/lab-base/'
} as ServerConnection.ISettings;

/** The local part of a path of the drive, as the contents manager gives it. */
function local(path: string): string {
  expect(path.startsWith(`${OUTPUT_DRIVE}:`)).toBe(true);
  return path.slice(OUTPUT_DRIVE.length + 1);
}

describe('OutputDrive', () => {
  let api: FakeApi;
  let drive: OutputDrive;
  let runId: string;

  beforeEach(() => {
    api = new FakeApi();
    drive = new OutputDrive({ api, serverSettings: settings });
    const orch = makeOrch({ entrypoint: 'main.ipynb' });
    api.orchestrations.push(orch);
    const task = api.addTask(orch, { name: 'report' });
    runId = api.addRun(task, 'success').run_id;
    api.outputs.set(runId, makeNotebook('hello from the notebook'));
  });

  afterEach(() => {
    drive.dispose();
  });

  it('is named OrchOutputs, with the settings it was given', () => {
    expect(drive.name).toBe('OrchOutputs');
    expect(drive.serverSettings).toBe(settings);
  });

  it("gets a run's executed notebook, not writable", async () => {
    const path = local(outputPath(runId, 'report – run 0000abcd'));
    const model = await drive.get(path, { type: 'notebook', content: true });
    expect(model).toMatchObject({
      name: 'report – run 0000abcd.ipynb',
      path,
      type: 'notebook',
      format: 'json',
      mimetype: 'application/x-ipynb+json',
      writable: false
    });
    expect(model.content.cells).toEqual(
      makeNotebook('hello from the notebook').cells
    );
    expect(Date.parse(model.last_modified)).not.toBeNaN();
    expect(api.calls).toEqual([`output ${runId}`]);
  });

  it('adds the metadata JupyterLab would add on loading, keeping the rest', async () => {
    const bare = makeNotebook('x');
    const model = await drive.get(`runs/${runId}.ipynb`);
    expect(model.content.metadata).toEqual({
      ...bare.metadata,
      language_info: { name: '' },
      kernelspec: { name: '', display_name: '' }
    });
    const full = {
      ...bare,
      metadata: {
        kernelspec: { name: 'python3', display_name: 'Python 3' },
        language_info: { name: 'python', version: '3.11.2' }
      }
    };
    api.outputs.set(runId, full);
    expect((await drive.get(`runs/${runId}.ipynb`)).content).toEqual(full);
  });

  it('takes runs/<run id>.ipynb too, with or without slashes around', async () => {
    for (const path of [`runs/${runId}.ipynb`, `/runs/${runId}/x.ipynb/`]) {
      const model = await drive.get(path);
      expect(model.type).toBe('notebook');
      expect(model.writable).toBe(false);
    }
  });

  it('asks again on every get: a run going on shows its newer copy', async () => {
    const path = local(outputPath(runId, 'report'));
    await drive.get(path);
    api.outputs.set(runId, makeNotebook('later'));
    const model = await drive.get(path);
    expect(model.content.cells).toEqual(makeNotebook('later').cells);
    expect(api.calls).toEqual([`output ${runId}`, `output ${runId}`]);
  });

  it("rejects a run without output with the server's 404 message", async () => {
    api.outputs.delete(runId);
    const error: unknown = await drive
      .get(local(outputPath(runId, 'report')))
      .catch(e => e);
    expect(isNotFound(error)).toBe(true);
    expect((error as Error).message).toBe(
      `run ${runId} has no notebook output`
    );
  });

  it('rejects a path that is no run output as not found', async () => {
    for (const path of ['runs/abc', 'other/x.ipynb', 'runs/a/b/c.ipynb']) {
      const error: unknown = await drive.get(path).catch(e => e);
      expect(isNotFound(error)).toBe(true);
    }
    expect(api.calls).toEqual([]);
  });

  it('shows its root and runs/ as empty folders', async () => {
    for (const path of ['', 'runs']) {
      const model = await drive.get(path);
      expect(model).toMatchObject({ type: 'directory', content: [] });
    }
  });

  it('answers without content when asked so', async () => {
    const model = await drive.get(`runs/${runId}.ipynb`, { content: false });
    expect(model.content).toBeNull();
    expect(model.writable).toBe(false);
  });

  it('refuses every change: save, rename, delete, copy, new, checkpoints', async () => {
    const path = local(outputPath(runId, 'report'));
    const changes: (() => Promise<unknown>)[] = [
      () => drive.save(path),
      () => drive.rename(path),
      () => drive.delete(path),
      () => drive.copy(path),
      () => drive.newUntitled(),
      () => drive.createCheckpoint(path),
      () => drive.restoreCheckpoint(path),
      () => drive.deleteCheckpoint(path)
    ];
    for (const change of changes) {
      await expect(change()).rejects.toThrow(/read-only/);
    }
    await expect(drive.listCheckpoints()).resolves.toEqual([]);
    expect(api.calls).toEqual([]);
  });

  describe('prefetch', () => {
    it('fetches once for the open that follows', async () => {
      await drive.prefetch(runId);
      const path = local(outputPath(runId, 'report'));
      const stat = await drive.get(path, { content: false });
      expect(stat.content).toBeNull();
      const model = await drive.get(path);
      expect(model.content.cells).toEqual(
        makeNotebook('hello from the notebook').cells
      );
      expect(api.calls).toEqual([`output ${runId}`]);
      // kept for one get only
      await drive.get(path);
      expect(api.calls).toEqual([`output ${runId}`, `output ${runId}`]);
    });

    it("rejects with the server's message, and keeps nothing", async () => {
      const other = '00000000-0000-4000-8000-999999999999';
      await expect(drive.prefetch(other)).rejects.toThrow(
        `run ${other} not found`
      );
      await drive.prefetch(runId);
      api.outputs.delete(runId);
      await expect(drive.prefetch(runId)).rejects.toThrow(
        'has no notebook output'
      );
      await expect(drive.get(`runs/${runId}.ipynb`)).rejects.toThrow(
        'has no notebook output'
      );
    });
  });

  it('gives the API address as the download URL', async () => {
    await expect(drive.getDownloadUrl(`runs/${runId}/r.ipynb`)).resolves.toBe(
      `http://127.0.0.1:8888/lab-base/orch/v1/api/task/get_run_output?id=${runId}`
    );
    await expect(drive.getDownloadUrl('runs')).rejects.toThrow();
  });
});

describe('output paths', () => {
  const id = '0b8f9c1e-1111-4222-8333-444455556666';

  it('name the file after the title, and give the run id back', () => {
    const path = outputPath(id, 'nightly – run 0b8f9c1e');
    expect(path).toBe(`OrchOutputs:runs/${id}/nightly – run 0b8f9c1e.ipynb`);
    expect(isOutputPath(path)).toBe(true);
    expect(runIdOf(local(path))).toBe(id);
  });

  it('keep separators, colons and control characters out of the name', () => {
    const path = outputPath(id, 'a/b\\c:d\ne');
    expect(path).toBe(`OrchOutputs:runs/${id}/a-b-c-d-e.ipynb`);
    expect(runIdOf(local(path))).toBe(id);
    expect(outputPath(id, ' / ')).toBe(`OrchOutputs:runs/${id}/-.ipynb`);
  });

  it('are only those of the drive', () => {
    expect(isOutputPath('runs/x.ipynb')).toBe(false);
    expect(isOutputPath('OrchOutputs2:runs/x.ipynb')).toBe(false);
    expect(runIdOf('notebooks/main.ipynb')).toBeNull();
  });
});
