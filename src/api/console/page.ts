import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Approver, ConsoleRole } from '../access.ts';
import type { ApproverContext } from '../context.ts';
import type { SafeHtml } from '../html.ts';
import type { ApproverServices } from '../routes.ts';
import type { Section, SignedIn } from './layout.ts';

/** What the console's pages may read of the core: the approver routes' services (add a field there for a new need). */
export type ConsoleServices = ApproverServices;

/**
 * One console page: a file under src/api/console/ exporting one of these, listed in pages.ts. register.ts serves
 * it at `path` to users whose role reaches `role`, in the layout with `section` current.
 */
export interface ConsolePage {
  /** The route, in fastify's syntax: `/`, `/activity`, `/calls/:id`. */
  path: string;
  section: Section;
  /** The least role that may open it (`viewer` reads; `approver` decides; `admin` sees drafts and the DLQ). */
  role: ConsoleRole;
  render(view: PageView): Promise<PageAnswer>;
  /** Routes the page needs besides itself (a stream, a JSON feed, a form post), registered once at startup. */
  routes?(app: FastifyInstance, tools: ConsoleTools): void;
}

/** One request for a page, as its `render` sees it. */
export interface PageView {
  request: FastifyRequest;
  user: Approver;
  me: SignedIn;
  /** The relative way to the console's root from this page: prefix every link with it. */
  root: string;
  services: ConsoleServices;
  now: number;
  /** A CSRF token for a form of this user's session; `ConsoleTools.checkForm` verifies it with the same purpose. */
  csrf(purpose: string): string;
}

export interface PageAnswer {
  title: string;
  body: SafeHtml;
  /** Files under /assets/ to load (see assets.ts), deferred. */
  scripts?: readonly string[];
  /** Use the whole width (tables, feeds). */
  wide?: boolean;
  status?: number;
}

/** What a page's own routes use: the same admission, role check and CSRF check as the pages. */
export interface ConsoleTools {
  ctx: ApproverContext;
  services: ConsoleServices;
  /** A browser request's user (session cookie or local user) with at least `role`, or undefined once the reply says why not. */
  admit(request: FastifyRequest, reply: FastifyReply, role: ConsoleRole, root: string): Approver | undefined;
  /** Whether a form post carries this session's token for `purpose` and comes from this server. */
  checkForm(request: FastifyRequest, user: Approver, purpose: string): boolean;
  /** Answers a page in the layout. */
  send(reply: FastifyReply, view: Pick<PageView, 'me' | 'root'> & { section?: Section }, answer: PageAnswer): FastifyReply;
}
