import type { ConsolePage } from './page.ts';
import { overviewPage } from './overview.ts';
import { activityPage } from './activity.ts';
import { sessionsPage } from './sessions.ts';
import { callPage } from './call.ts';
import { policyPage } from './policy.ts';
import { upstreamsPage } from './upstreams.ts';

/**
 * Every console page, one file each: add a page by writing its file and listing it here (and, for a new navigation
 * item, a section in layout.ts). The approval pages live in ../pages.ts and join the navigation as `approvals`.
 */
export const CONSOLE_PAGES: readonly ConsolePage[] = [overviewPage, activityPage, callPage, sessionsPage, policyPage, upstreamsPage];
