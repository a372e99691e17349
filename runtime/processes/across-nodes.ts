/**
 * Executions across the nodes of a molecule, on the store's notifications (PostgreSQL
 * LISTEN/NOTIFY, channel `executions`): each node publishes the views of the executions it
 * changes (status changes and step-count pushes), so the live views (SSE) of every node
 * show every node's executions; and a cancel received by a node that does not run the
 * execution is sent to all, and the node that runs it stops it. A notification is lost
 * while a node's listening connection is down, so a cancel is also kept in the record
 * (executions.requestCancel): the owner reads its requested cancels again each time it
 * listens again (`resumed`) and on its reconciler tick.
 */
import { messageOf } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { StoreNotifications } from '../store/types.js';

export const executionsChannel = 'executions';

/** A view bigger than this goes as its id only; the receivers read it from the store. */
const maxInlineView = 7000;

export type AcrossMessage =
  | { kind: 'event'; node: string; account: string; id: string; view?: Record<string, unknown> }
  | { kind: 'cancel'; node: string; account: string; id: string; by: string };

export interface AcrossHandlers {
  /** Another node changed an execution: its view, or undefined when it has to be read from the store. */
  event(account: string, id: string, view: Record<string, unknown> | undefined): void;
  /** A cancel of an execution, sent by any node (this one's run stops it if it runs it). */
  cancel(account: string, id: string, by: string): void;
  /** Listening (again, after a lost connection): what was missed meanwhile must be read from the store. */
  resumed(): void;
}

export interface Across {
  publish(account: string, id: string, view: Record<string, unknown>): void;
  cancel(account: string, id: string, by: string): Promise<void>;
  close(): void;
}

function parse(payload: string): AcrossMessage | undefined {
  try {
    const message = JSON.parse(payload) as AcrossMessage;
    return typeof message?.id === 'string' && typeof message.account === 'string' ? message : undefined;
  } catch {
    return undefined;
  }
}

/** Listens on the channel; resolves once listening. */
export async function openAcross(notifications: StoreNotifications, node: string, logger: Logger, handlers: AcrossHandlers): Promise<Across> {
  const unlisten = await notifications.listen(executionsChannel, {
    message(payload) {
      const message = parse(payload);
      if (!message || message.node === node) return;
      if (message.kind === 'cancel') handlers.cancel(message.account, message.id, message.by);
      else handlers.event(message.account, message.id, message.view);
    },
    // a lost event only delays a live view (the next one of that execution carries its whole
    // state); a lost cancel is in the store, read again here
    resumed: () => handlers.resumed(),
  });
  const send = (message: AcrossMessage) => notifications.notify(executionsChannel, JSON.stringify(message));
  return {
    publish(account, id, view) {
      const whole = JSON.stringify(view);
      const message: AcrossMessage = { kind: 'event', node, account, id, ...(Buffer.byteLength(whole) <= maxInlineView ? { view } : {}) };
      send(message).catch((error: unknown) => logger.debug({ err: messageOf(error), execution: id }, 'an execution event could not be published to the other nodes'));
    },
    cancel: (account, id, by) => send({ kind: 'cancel', node, account, id, by }),
    close: unlisten,
  };
}
