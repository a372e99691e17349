/** The runtime's server-sent execution events, read by a test. */

/** Reads a server-sent event stream; `next(predicate)` resolves with the first matching event. */
export function eventStream(response: Response) {
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  const seen: any[] = [];
  return {
    seen,
    async next(predicate: (event: any) => boolean, ms = 120_000): Promise<any> {
      const deadline = Date.now() + ms;
      for (;;) {
        const found = seen.find(predicate);
        if (found) return found;
        if (Date.now() > deadline) throw new Error(`no matching event in ${JSON.stringify(seen)}`);
        const { value, done } = await reader.read();
        if (done) throw new Error('the stream ended');
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const data = block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
          if (data) seen.push(JSON.parse(data));
        }
      }
    },
    cancel: () => reader.cancel(),
  };
}

/** Opens the execution event stream of the account of `token`. */
export async function openEvents(url: string, token: string) {
  const response = await fetch(`${url}/api/v1/executions/events`, { headers: { authorization: `Bearer ${token}` } });
  if (response.status !== 200) throw new Error(`the event stream answered ${response.status}`);
  return eventStream(response);
}
