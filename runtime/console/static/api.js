// The console's only door to the runtime: the HTTP API with the signed-in token, which is
// kept in sessionStorage (this tab's session only) and forgotten on sign-out.
const key = 'quark.token';

export const token = {
  get: () => sessionStorage.getItem(key),
  set: (value) => sessionStorage.setItem(key, value),
  clear: () => sessionStorage.removeItem(key),
};

/** An API error: the runtime's {code, message, details}, with the HTTP status. */
export class ApiError extends Error {
  constructor(status, error) {
    super(error?.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = error?.code ?? 'HTTP_' + status;
    this.details = error?.details;
  }
}

let onUnauthorized = () => {};
export function whenUnauthorized(fn) {
  onUnauthorized = fn;
}

export async function api(method, path, body, signInToken) {
  const bearer = signInToken ?? token.get();
  const response = await fetch('/api/v1' + path, {
    method,
    headers: { ...(bearer ? { authorization: 'Bearer ' + bearer } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    cache: 'no-store',
  });
  const text = await response.text();
  let parsed = text;
  if ((response.headers.get('content-type') ?? '').includes('application/json') && text) parsed = JSON.parse(text);
  if (!response.ok) {
    const error = new ApiError(response.status, parsed?.error);
    if (response.status === 401 && !signInToken) onUnauthorized(error);
    throw error;
  }
  return parsed;
}

/**
 * The live execution events (server-sent events read with fetch, since EventSource cannot
 * send the Authorization header). Reconnects after a drop while `signal` is not aborted.
 */
export function executionEvents(onEvent, onState, signal) {
  let delay = 1000;
  async function connect() {
    while (!signal.aborted) {
      try {
        const response = await fetch('/api/v1/executions/events', { headers: { authorization: 'Bearer ' + token.get() }, signal, cache: 'no-store' });
        if (!response.ok) throw new ApiError(response.status);
        onState('live');
        delay = 1000;
        const reader = response.body.getReader();
        const decoder = new TextDecoder();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true });
          let cut;
          while ((cut = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            const data = block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
            if (data) onEvent(JSON.parse(data));
          }
        }
      } catch (error) {
        if (signal.aborted) return;
        if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
          onState('unavailable');
          return;
        }
      }
      if (signal.aborted) return;
      onState('reconnecting');
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 15000);
    }
  }
  void connect();
}
