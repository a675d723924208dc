/**
 * What a governed request is about. Tool calls are most of them; a resource (`resources/read`,
 * `resources/subscribe`, the completion of a resource template's argument) or a prompt (`prompts/get`, the
 * completion of a prompt's argument) reads data as surely as a tool does, so it is decided and audited the same way.
 */
export type RequestKind = 'tool' | 'resource' | 'prompt';

/** The MCP method a request of each kind is, unless it says otherwise. */
export const DEFAULT_METHOD: Readonly<Record<RequestKind, string>> = { tool: 'tools/call', resource: 'resources/read', prompt: 'prompts/get' };

/**
 * What a request other than a tool call is called where a tool call has its namespaced name (the `tool` of a
 * decision input, an approval and an audit record): its method and target, `resources/read file:///notes/a.md` or
 * `prompts/get notes__summarize`. The space keeps it apart from every tool name.
 */
export function requestName(method: string, target: string): string {
  return `${method} ${target}`;
}
