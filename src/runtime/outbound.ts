import { isIP } from 'node:net';
import { OutboundGuard, type OutboundRules } from '../../adapters/http/outbound-guard.ts';
import type { GatehouseConfig } from '../config/schema.ts';

/**
 * Whether Gatehouse listens on loopback only (listen.http on 127.0.0.0/8, localhost or ::1, or no HTTP at all):
 * then nothing beyond this machine can make it call, and loopback upstreams, the common local set-up, are allowed.
 */
export function listensOnLoopbackOnly(listen: GatehouseConfig['listen']): boolean {
  if (listen.http === false) return true;
  const host = listen.http.slice(0, listen.http.lastIndexOf(':')).replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

/** The guard's rules from `outbound`, loopback following the listen address unless set. */
export function outboundRules(config: Pick<GatehouseConfig, 'listen' | 'outbound'>): OutboundRules {
  return { allowPrivate: config.outbound.allowPrivate, allowLoopback: config.outbound.allowLoopback ?? listensOnLoopbackOnly(config.listen) };
}

/** The SSRF guard every outbound HTTP request of this process goes through. */
export const outboundGuardFor = (config: Pick<GatehouseConfig, 'listen' | 'outbound'>): OutboundGuard => new OutboundGuard(outboundRules(config));
