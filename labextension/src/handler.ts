import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** Where the orchestration API lives, under the server's base URL. */
export const API_PATH = 'orch/v1/api';

/** An error answer of the API, carrying the server's own message. */
export class OrchApiError extends Error {
  constructor(
    message: string,
    readonly status: number
  ) {
    super(message);
    this.name = 'OrchApiError';
  }
}

/**
 * Call an endpoint of the orchestration API and decode its JSON answer.
 *
 * POST endpoints take `init.body` (JSON text). A non-2xx answer throws an
 * `OrchApiError` whose message is the server's `message`.
 */
export async function requestAPI<T>(
  endPoint: string,
  init: RequestInit = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  const response = await send(endPoint, init, settings);
  const text = await response.text();
  if (!text) {
    return undefined as T;
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new OrchApiError(`${endPoint}: the server answered no JSON`, 0);
  }
}

/**
 * Call an endpoint whose answer is JSON lines (`task/follow_logs`), giving each decoded
 * line to `onLine` as it arrives. Resolves when the answer ends.
 */
export async function streamJSONLines<T>(
  endPoint: string,
  onLine: (value: T) => void,
  signal: AbortSignal,
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<void> {
  const response = await send(endPoint, { method: 'GET', signal }, settings);
  if (!response.body) {
    throw new OrchApiError(`${endPoint}: the answer has no body`, 0);
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let pending = '';
  for (;;) {
    const { done, value } = await reader.read();
    pending += done
      ? decoder.decode()
      : decoder.decode(value, { stream: true });
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      if (line.trim()) {
        onLine(JSON.parse(line) as T);
      }
    }
    if (done) {
      return;
    }
  }
}

/** One request; a network failure or an error answer becomes an `OrchApiError`. */
async function send(
  endPoint: string,
  init: RequestInit,
  settings: ServerConnection.ISettings
): Promise<Response> {
  const url = URLExt.join(settings.baseUrl, API_PATH, endPoint);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    if (init.signal?.aborted) {
      throw new DOMException('the request was cancelled', 'AbortError');
    }
    const reason = error instanceof Error ? error.message : String(error);
    throw new OrchApiError(`cannot reach the server: ${reason}`, 0);
  }
  if (!response.ok) {
    throw new OrchApiError(await errorMessage(response), response.status);
  }
  return response;
}

/** The server's `message`, else the status line. */
async function errorMessage(response: Response): Promise<string> {
  const fallback = `${response.status} ${response.statusText}`.trim();
  try {
    const data: unknown = await response.json();
    if (data && typeof data === 'object' && 'message' in data) {
      const message = (data as { message: unknown }).message;
      if (typeof message === 'string' && message) {
        return message;
      }
    }
  } catch {
    // not JSON: the status line says enough
  }
  return fallback;
}
