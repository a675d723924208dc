import type { JsonRpcNotification } from '../protocol/jsonrpc.ts';
import { ENVELOPE } from './era.ts';

/** What a `subscriptions/listen` stream asks to hear (2026-07-28): each kind of change opted into by name. */
export interface ListenFilter {
  toolsListChanged?: true;
  promptsListChanged?: true;
  resourcesListChanged?: true;
  resourceSubscriptions?: string[];
}

/** The filter a listen request carries in `params.notifications`, or undefined when it is missing or malformed. */
export function readListenFilter(params: Record<string, unknown> | undefined): ListenFilter | undefined {
  const asked = params?.notifications;
  if (!asked || typeof asked !== 'object' || Array.isArray(asked)) return undefined;
  const { toolsListChanged, promptsListChanged, resourcesListChanged, resourceSubscriptions } = asked as Record<string, unknown>;
  for (const flag of [toolsListChanged, promptsListChanged, resourcesListChanged]) if (flag !== undefined && typeof flag !== 'boolean') return undefined;
  if (resourceSubscriptions !== undefined && !(Array.isArray(resourceSubscriptions) && resourceSubscriptions.every((uri) => typeof uri === 'string'))) return undefined;
  return {
    ...(toolsListChanged === true ? { toolsListChanged: true } : {}),
    ...(promptsListChanged === true ? { promptsListChanged: true } : {}),
    ...(resourcesListChanged === true ? { resourcesListChanged: true } : {}),
    ...(resourceSubscriptions !== undefined && resourceSubscriptions.length > 0 ? { resourceSubscriptions: [...new Set(resourceSubscriptions as string[])] } : {}),
  };
}

/** Whether a notification not tied to a request belongs on a stream with this filter: nothing it did not ask for. */
export function filterAccepts(filter: ListenFilter, message: JsonRpcNotification): boolean {
  switch (message.method) {
    case 'notifications/tools/list_changed':
      return filter.toolsListChanged === true;
    case 'notifications/prompts/list_changed':
      return filter.promptsListChanged === true;
    case 'notifications/resources/list_changed':
      return filter.resourcesListChanged === true;
    case 'notifications/resources/updated':
      return filter.resourceSubscriptions?.includes(String(message.params?.uri)) === true;
    default:
      return false;
  }
}

/** A notification on a listen stream names the subscription (the listen request's id) it is sent for. */
export function tagged(message: JsonRpcNotification, subscriptionId: string | number): JsonRpcNotification {
  const params = message.params ?? {};
  return { ...message, params: { ...params, _meta: { ...((params._meta as Record<string, unknown>) ?? {}), [ENVELOPE.subscriptionId]: subscriptionId } } };
}
