/**
 * Step data: the documents that left each step of an execution, recorded when the run is
 * in test mode, or its process sets options.recordStepData, or the request asks for it
 * (off by default). At most limits.stepDataDocuments per step, bodies cut at
 * limits.stepDataBodyBytes; scrubbed as logs are (properties named like a secret, the
 * secret values of the connections the execution used) before they are stored with the
 * execution, which purges them with it.
 */
import { baseRedactPaths } from '../core/logger.js';
import { scrubText } from '../secrets/secret-fields.js';
import type { StepDataLimits, StepSample } from '../engine/messages.js';

/** Property names redacted whatever their value, as log lines redact these keys: the last dotted segment. */
const secretNames = new Set(baseRedactPaths.map((path) => path.split('.').pop()!.toLowerCase()));

export const redacted = '[redacted]';

/** Whether a property's name says it holds a secret (`password`, `api.token`, `Authorization`…). */
export function secretName(name: string): boolean {
  return secretNames.has(name.split('.').pop()!.toLowerCase());
}

export interface StepRecorder {
  limits: StepDataLimits;
  add(samples: StepSample[]): void;
  /** What was recorded, at most limits.perStep per step, in the order the documents left. */
  samples(): StepSample[];
}

export function createStepRecorder(limits: StepDataLimits): StepRecorder {
  const kept: StepSample[] = [];
  const perStep = new Map<string, number>();
  return {
    limits,
    add(samples) {
      for (const sample of samples) {
        const n = perStep.get(sample.step) ?? 0;
        if (n >= limits.perStep) continue;
        perStep.set(sample.step, n + 1);
        kept.push(sample);
      }
    },
    samples: () => kept,
  };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A body head with secret values replaced, when it is text; binary heads are kept as they are. */
function scrubBody(body: Uint8Array, secrets: readonly string[]): Uint8Array {
  if (secrets.length === 0) return body;
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    return body;
  }
  const scrubbed = scrubText(text, secrets);
  return scrubbed === text ? body : new TextEncoder().encode(scrubbed);
}

/** A sample as it may be stored: secret-named properties redacted, secret values scrubbed everywhere. */
export function scrubSample(sample: StepSample, secrets: readonly string[]): StepSample {
  const input = sample.input ? { input: scrubProperties(sample.input, secrets) } : {};
  return { ...sample, properties: scrubProperties(sample.properties, secrets), ...input, body: scrubBody(sample.body, secrets) };
}

function scrubProperties(properties: Record<string, string>, secrets: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(properties)) out[scrubText(name, secrets)] = secretName(name) ? redacted : scrubText(value, secrets);
  return out;
}
