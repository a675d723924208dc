import { userInfo } from 'node:os';
import type { Caller } from '../../protocol/call.ts';

/** On stdio the caller is whoever started the process: the local user, in the default tenant. */
export function localCaller(): Caller {
  let name = 'local';
  try {
    name = userInfo().username || name;
  } catch {
    // no passwd entry (some containers): keep "local"
  }
  return { principal: name, tenant: 'default' };
}
