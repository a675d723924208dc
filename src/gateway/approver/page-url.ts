import type { GatehouseConfig } from '../../config/schema.ts';

/**
 * The base the approval pages are reached at, for links sent out of band (webhooks, client messages):
 * `approvals.publicUrl`, else the listen.http address; undefined when HTTP is off. `/approvals/<id>` follows it.
 */
export function approvalPagesBase(config: Pick<GatehouseConfig, 'approvals' | 'listen'>): string | undefined {
  if (config.approvals.publicUrl) return config.approvals.publicUrl.replace(/\/+$/, '');
  return config.listen.http ? `http://${config.listen.http}` : undefined;
}

/** The page of one approval, given the base from `approvalPagesBase`. */
export const approvalPageUrl = (base: string, id: string): string => `${base}/approvals/${encodeURIComponent(id)}`;
