/**
 * The CAP wire: BusPacket <-> protobuf bytes, byte-compatible with CAP 1.0 (proto/cordum/agent/v1/cap.proto).
 * Pure: no bus library here, so the NATS adapter and any test can share it.
 *
 * proto3 fields have no presence: an empty string, a zero and an absent field are the same bytes. So the core's
 * optional fields decode as `undefined` when the wire holds their default ('' or 0), and encode nothing when
 * they are empty.
 *
 * Whatever a decoded packet holds that the core's types cannot (fields of a newer CAP, sub-millisecond
 * timestamps, context hints' unknown fields) stays on the decoded objects under `capWire`, an enumerable symbol
 * that object spreads copy, and encode writes it back, so a relayed packet keeps those bytes.
 */
import { create, fromBinary, fromJsonString, toBinary, toJsonString, type Message } from '@bufbuild/protobuf';
import { timestampFromMs, timestampMs, type Timestamp } from '@bufbuild/protobuf/wkt';
import { GatewayError } from '../errors.ts';
import * as pb from './gen/cordum/agent/v1/cap_pb.ts';
import type {
  Budget,
  BusPacket,
  BusPayload,
  Heartbeat,
  JobCancel,
  JobMetadata,
  JobProgress,
  JobRequest,
  JobResult,
} from './cap.ts';

/** The decoded protobuf message behind a core object, kept only when it carries what the core object cannot. */
export const capWire: unique symbol = Symbol.for('gatehouse.capWire');

type Kept<T> = T & { [capWire]?: Message };

/** CAP's ActorType enum, and the core's names for it. Names CAP cannot say exactly ride in field 1000. */
const ACTOR_TYPES: Record<string, pb.ActorType> = {
  '': pb.ActorType.UNSPECIFIED,
  human: pb.ActorType.HUMAN,
  user: pb.ActorType.HUMAN,
  service: pb.ActorType.SERVICE,
};
const ACTOR_TYPE_NAMES: Record<number, string> = { [pb.ActorType.HUMAN]: 'human', [pb.ActorType.SERVICE]: 'service' };

export function encodeBusPacket(packet: BusPacket): Uint8Array {
  try {
    return toBinary(pb.BusPacketSchema, toProtoPacket(packet));
  } catch (err) {
    if (err instanceof GatewayError) throw err;
    throw wireError(`cannot encode the ${packet.payload?.kind ?? 'empty'} packet: ${messageOf(err)}`, err);
  }
}

export function decodeBusPacket(bytes: Uint8Array): BusPacket {
  let message: pb.BusPacket;
  try {
    message = fromBinary(pb.BusPacketSchema, bytes);
  } catch (err) {
    throw wireError(`not a CAP BusPacket: ${messageOf(err)}`, err);
  }
  return fromProtoPacket(message);
}

// ---- core -> protobuf

function toProtoPacket(packet: Kept<BusPacket>): pb.BusPacket {
  const kept = packet[capWire] as pb.BusPacket | undefined;
  const message = create(pb.BusPacketSchema, {
    traceId: packet.traceId,
    senderId: packet.senderId,
    createdAt: timestampOf(packet.createdAt, kept?.createdAt),
    protocolVersion: packet.protocolVersion,
    payload: toProtoPayload(packet.payload),
    signature: packet.signature ?? new Uint8Array(0),
  });
  return withUnknown(message, kept);
}

function timestampOf(ms: number, kept: Timestamp | undefined): Timestamp | undefined {
  if (kept && timestampMs(kept) === ms) return kept;
  if (!ms) return undefined;
  if (!Number.isInteger(ms)) throw wireError(`createdAt must be whole milliseconds, got ${ms}`);
  return timestampFromMs(ms);
}

function toProtoPayload(payload: BusPayload): pb.BusPacket['payload'] {
  switch (payload?.kind) {
    case 'jobRequest':
      return { case: 'jobRequest', value: toProtoRequest(payload.jobRequest) };
    case 'jobResult':
      return { case: 'jobResult', value: toProtoResult(payload.jobResult) };
    case 'heartbeat':
      return { case: 'heartbeat', value: toProtoHeartbeat(payload.heartbeat) };
    case 'jobProgress':
      return { case: 'jobProgress', value: toProtoProgress(payload.jobProgress) };
    case 'jobCancel':
      return { case: 'jobCancel', value: toProtoCancel(payload.jobCancel) };
    default:
      throw wireError(`unknown payload kind ${String((payload as { kind?: unknown } | undefined)?.kind)}`);
  }
}

function toProtoRequest(job: Kept<JobRequest>): pb.JobRequest {
  const kept = job[capWire] as pb.JobRequest | undefined;
  return withUnknown(
    create(pb.JobRequestSchema, {
      jobId: job.jobId,
      topic: job.topic,
      priority: job.priority as number,
      contextPtr: job.contextPtr,
      adapterId: job.adapterId ?? '',
      env: job.env,
      parentJobId: job.parentJobId ?? '',
      workflowId: job.workflowId ?? '',
      stepIndex: job.stepIndex ?? 0,
      memoryId: job.memoryId ?? '',
      contextHints: contextHintsOf(job.contextHints, kept?.contextHints),
      budget: job.budget === undefined ? undefined : toProtoBudget(job.budget),
      tenantId: job.tenantId,
      principalId: job.principalId,
      labels: job.labels,
      meta: toProtoMeta(job.meta),
      gatehouseReplyTo: job.replyTo ?? '',
    }),
    kept,
  );
}

/** The core holds CAP's ContextHints message as its proto JSON text. */
function contextHintsOf(json: string | undefined, kept: pb.ContextHints | undefined): pb.ContextHints | undefined {
  if (json === undefined || json === '') return undefined;
  if (kept && toJsonString(pb.ContextHintsSchema, kept) === json) return kept;
  try {
    return fromJsonString(pb.ContextHintsSchema, json);
  } catch (err) {
    throw wireError(`contextHints is not the JSON of a CAP ContextHints: ${messageOf(err)}`, err);
  }
}

function toProtoBudget(budget: Kept<Budget>): pb.Budget {
  return withUnknown(
    create(pb.BudgetSchema, {
      maxInputTokens: int64(budget.maxInputTokens, 'maxInputTokens'),
      maxOutputTokens: int64(budget.maxOutputTokens, 'maxOutputTokens'),
      maxTotalTokens: int64(budget.maxTotalTokens, 'maxTotalTokens'),
      deadlineMs: int64(budget.deadlineMs, 'deadlineMs'),
    }),
    budget[capWire],
  );
}

function toProtoMeta(meta: Kept<JobMetadata> | undefined): pb.JobMetadata | undefined {
  if (meta === undefined) return undefined;
  const actorType = ACTOR_TYPES[meta.actorType];
  return withUnknown(
    create(pb.JobMetadataSchema, {
      tenantId: meta.tenantId,
      actorId: meta.actorId,
      actorType: actorType ?? pb.ActorType.UNSPECIFIED,
      idempotencyKey: meta.idempotencyKey ?? '',
      capability: meta.capability,
      riskTags: meta.riskTags,
      requires: meta.requires,
      packId: meta.packId ?? '',
      labels: meta.labels,
      gatehouseActorType: actorType !== undefined && ACTOR_TYPE_NAMES[actorType] === meta.actorType ? '' : meta.actorType,
    }),
    meta[capWire],
  );
}

function toProtoResult(result: Kept<JobResult>): pb.JobResult {
  return withUnknown(
    create(pb.JobResultSchema, {
      jobId: result.jobId,
      status: result.status as number,
      resultPtr: result.resultPtr ?? '',
      workerId: result.workerId,
      executionMs: int64(result.executionMs, 'executionMs'),
      errorCode: result.errorCode ?? '',
      errorMessage: result.errorMessage ?? '',
      artifactPtrs: result.artifactPtrs ?? [],
      gatehouseResultDigest: result.resultDigest,
      gatehouseResultBytes: result.resultBytes === undefined ? undefined : int64(result.resultBytes, 'resultBytes'),
    }),
    result[capWire],
  );
}

function toProtoProgress(progress: Kept<JobProgress>): pb.JobProgress {
  return withUnknown(
    create(pb.JobProgressSchema, {
      jobId: progress.jobId,
      stepId: progress.stepId ?? '',
      // CAP's percent is a whole number; the exact values travel in the Gatehouse fields.
      percent: Math.round(progress.percent ?? 0),
      message: progress.message ?? '',
      resultPtr: progress.resultPtr ?? '',
      artifactPtrs: progress.artifactPtrs ?? [],
      status: (progress.status ?? 0) as number,
      gatehouseProgress: progress.progress,
      gatehouseTotal: progress.total,
    }),
    progress[capWire],
  );
}

function toProtoCancel(cancel: Kept<JobCancel>): pb.JobCancel {
  return withUnknown(
    create(pb.JobCancelSchema, { jobId: cancel.jobId, reason: cancel.reason, requestedBy: cancel.requestedBy }),
    cancel[capWire],
  );
}

function toProtoHeartbeat(heartbeat: Kept<Heartbeat>): pb.Heartbeat {
  return withUnknown(
    create(pb.HeartbeatSchema, {
      workerId: heartbeat.workerId,
      region: heartbeat.region ?? '',
      type: heartbeat.type ?? '',
      cpuLoad: heartbeat.cpuLoad ?? 0,
      gpuUtilization: heartbeat.gpuUtilization ?? 0,
      activeJobs: heartbeat.activeJobs,
      capabilities: heartbeat.capabilities,
      pool: heartbeat.pool,
      maxParallelJobs: heartbeat.maxParallelJobs,
      labels: heartbeat.labels,
    }),
    heartbeat[capWire],
  );
}

function int64(value: number | undefined, name: string): bigint {
  if (value === undefined) return 0n;
  if (!Number.isSafeInteger(value)) throw wireError(`${name} must be a safe integer, got ${value}`);
  return BigInt(value);
}

function withUnknown<T extends Message>(message: T, kept: Message | undefined): T {
  if (kept?.$unknown?.length) message.$unknown = kept.$unknown;
  return message;
}

// ---- protobuf -> core

function fromProtoPacket(message: pb.BusPacket): BusPacket {
  const packet: Kept<BusPacket> = {
    traceId: message.traceId,
    senderId: message.senderId,
    createdAt: message.createdAt ? timestampMs(message.createdAt) : 0,
    protocolVersion: message.protocolVersion,
    payload: fromProtoPayload(message.payload),
    ...(message.signature.length ? { signature: message.signature } : {}),
  };
  const ts = message.createdAt;
  return keep(packet, message, ts !== undefined && (ts.nanos % 1_000_000 !== 0 || !!ts.$unknown?.length));
}

function fromProtoPayload(payload: pb.BusPacket['payload']): BusPayload {
  switch (payload.case) {
    case 'jobRequest':
      return { kind: 'jobRequest', jobRequest: fromProtoRequest(payload.value) };
    case 'jobResult':
      return { kind: 'jobResult', jobResult: fromProtoResult(payload.value) };
    case 'heartbeat':
      return { kind: 'heartbeat', heartbeat: fromProtoHeartbeat(payload.value) };
    case 'jobProgress':
      return { kind: 'jobProgress', jobProgress: fromProtoProgress(payload.value) };
    case 'jobCancel':
      return { kind: 'jobCancel', jobCancel: fromProtoCancel(payload.value) };
    case 'alert':
      throw wireError('alert packets are not read by Gatehouse', undefined, { payload: 'alert' });
    default:
      // No payload, or one of a newer CAP (its field number is unknown here).
      throw wireError('the packet carries no payload Gatehouse knows', undefined, { payload: null });
  }
}

function fromProtoRequest(m: pb.JobRequest): JobRequest {
  const job: JobRequest = {
    jobId: m.jobId,
    topic: m.topic,
    priority: m.priority as number,
    contextPtr: m.contextPtr,
    ...optional('adapterId', m.adapterId),
    env: m.env,
    ...optional('parentJobId', m.parentJobId),
    ...optional('workflowId', m.workflowId),
    ...optional('stepIndex', m.stepIndex),
    ...optional('memoryId', m.memoryId),
    ...(m.contextHints ? { contextHints: toJsonString(pb.ContextHintsSchema, m.contextHints) } : {}),
    ...(m.budget ? { budget: fromProtoBudget(m.budget) } : {}),
    tenantId: m.tenantId,
    principalId: m.principalId,
    labels: m.labels,
    meta: fromProtoMeta(m.meta ?? create(pb.JobMetadataSchema)),
    ...optional('replyTo', m.gatehouseReplyTo),
  };
  return keep(job, m, !!m.contextHints?.$unknown?.length);
}

function fromProtoBudget(m: pb.Budget): Budget {
  return keep(
    {
      ...optional('maxInputTokens', Number(m.maxInputTokens)),
      ...optional('maxOutputTokens', Number(m.maxOutputTokens)),
      ...optional('maxTotalTokens', Number(m.maxTotalTokens)),
      ...optional('deadlineMs', Number(m.deadlineMs)),
    },
    m,
  );
}

function fromProtoMeta(m: pb.JobMetadata): JobMetadata {
  return keep(
    {
      tenantId: m.tenantId,
      actorId: m.actorId,
      actorType: m.gatehouseActorType || (ACTOR_TYPE_NAMES[m.actorType] ?? ''),
      ...optional('idempotencyKey', m.idempotencyKey),
      capability: m.capability,
      riskTags: m.riskTags,
      requires: m.requires,
      ...optional('packId', m.packId),
      labels: m.labels,
    },
    m,
  );
}

function fromProtoResult(m: pb.JobResult): JobResult {
  return keep(
    {
      jobId: m.jobId,
      status: m.status as number,
      ...optional('resultPtr', m.resultPtr),
      workerId: m.workerId,
      executionMs: Number(m.executionMs),
      ...optional('errorCode', m.errorCode),
      ...optional('errorMessage', m.errorMessage),
      ...(m.artifactPtrs.length ? { artifactPtrs: m.artifactPtrs } : {}),
      ...(m.gatehouseResultDigest === undefined ? {} : { resultDigest: m.gatehouseResultDigest }),
      ...(m.gatehouseResultBytes === undefined ? {} : { resultBytes: Number(m.gatehouseResultBytes) }),
    },
    m,
  );
}

function fromProtoProgress(m: pb.JobProgress): JobProgress {
  return keep(
    {
      jobId: m.jobId,
      ...optional('stepId', m.stepId),
      ...optional('percent', m.percent),
      ...optional('message', m.message),
      ...optional('resultPtr', m.resultPtr),
      ...(m.artifactPtrs.length ? { artifactPtrs: m.artifactPtrs } : {}),
      ...optional('status', m.status as number),
      ...(m.gatehouseProgress === undefined ? {} : { progress: m.gatehouseProgress }),
      ...(m.gatehouseTotal === undefined ? {} : { total: m.gatehouseTotal }),
    },
    m,
  );
}

function fromProtoCancel(m: pb.JobCancel): JobCancel {
  return keep({ jobId: m.jobId, reason: m.reason, requestedBy: m.requestedBy }, m);
}

function fromProtoHeartbeat(m: pb.Heartbeat): Heartbeat {
  return keep(
    {
      workerId: m.workerId,
      ...optional('region', m.region),
      ...optional('type', m.type),
      ...optional('cpuLoad', m.cpuLoad),
      ...optional('gpuUtilization', m.gpuUtilization),
      activeJobs: m.activeJobs,
      capabilities: m.capabilities,
      pool: m.pool,
      maxParallelJobs: m.maxParallelJobs,
      labels: m.labels,
    },
    m,
  );
}

/** `{ [key]: value }` unless the value is proto3's default, which means absent. */
function optional<K extends string, V extends string | number>(key: K, value: V): { [P in K]?: V } {
  return (value === '' || value === 0 ? {} : { [key]: value }) as { [P in K]?: V };
}

function keep<T extends object>(target: T, message: Message, alsoKeep = false): T {
  if (alsoKeep || message.$unknown?.length) (target as Kept<T>)[capWire] = message;
  return target;
}

function wireError(message: string, cause?: unknown, data?: Record<string, unknown>): GatewayError {
  return new GatewayError('GH_ERR_WIRE_INVALID', message, { cause, data });
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
