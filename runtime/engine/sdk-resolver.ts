/**
 * Module resolve hook registered in plugin workers: `quark/sdk` resolves to the running
 * runtime's SDK whatever folder the plugin lives in. Nothing else of quark is reachable.
 */
let sdkUrl = '';

export function initialize(data: { sdkUrl: string }): void {
  sdkUrl = data.sdkUrl;
}

type Next = (specifier: string, context: unknown) => Promise<{ url: string }>;

export async function resolve(specifier: string, context: unknown, next: Next): Promise<{ url: string; shortCircuit?: boolean }> {
  if (specifier === 'quark/sdk') return { url: sdkUrl, shortCircuit: true };
  return next(specifier, context);
}
