/**
 * CAP 1.0 envelope types (package cordum.agent.v1). Field names follow the protobuf messages of
 * ARCHITECTURE §3 in camelCase, so a later protobuf codec maps them one to one. Payloads never ride in these
 * envelopes: arguments and results live in the store and travel as pointers (`ctx:<job_id>`, `res:<job_id>`).
 */
export const CAP_PROTOCOL_VERSION = 1;

export enum JobStatus {
  UNSPECIFIED = 0,
  PENDING = 1,
  SCHEDULED = 2,
  DISPATCHED = 3,
  RUNNING = 4,
  SUCCEEDED = 5,
  FAILED = 6,
  CANCELLED = 7,
  DENIED = 8,
  TIMEOUT = 9,
}

export enum JobPriority {
  UNSPECIFIED = 0,
  INTERACTIVE = 1,
  BATCH = 2,
  CRITICAL = 3,
}

export enum SafetyDecision {
  UNSPECIFIED = 0,
  ALLOW = 1,
  DENY = 2,
  REQUIRE_HUMAN = 3,
  THROTTLE = 4,
  ALLOW_WITH_CONSTRAINTS = 5,
}

export interface Budget {
  maxInputTokens?: number;
  maxOutputTokens?: number;
  maxTotalTokens?: number;
  deadlineMs?: number;
}

export interface JobMetadata {
  tenantId: string;
  actorId: string;
  actorType: string;
  idempotencyKey?: string;
  capability: string;
  riskTags: string[];
  requires: string[];
  packId?: string;
  labels: Record<string, string>;
}

export interface JobRequest {
  jobId: string;
  topic: string;
  priority: JobPriority;
  contextPtr: string;
  adapterId?: string;
  env: Record<string, string>;
  parentJobId?: string;
  workflowId?: string;
  stepIndex?: number;
  memoryId?: string;
  contextHints?: string;
  budget?: Budget;
  tenantId: string;
  principalId: string;
  labels: Record<string, string>;
  meta: JobMetadata;
  /**
   * Where the executor publishes the job's result and progress (its receipt too): the dispatching replica's own
   * subject, `Subjects.reply(id)`, so no other replica hears them. Unset (a CAP peer that does not know it): the
   * shared `sys.job.result` and `sys.job.progress`.
   */
  replyTo?: string;
}

export interface JobResult {
  jobId: string;
  status: JobStatus;
  resultPtr?: string;
  workerId: string;
  executionMs: number;
  errorCode?: string;
  errorMessage?: string;
  artifactPtrs?: string[];
  /** Not in CAP: the digest (`digestOf`) and JCS size of the result as the client gets it, for the audit record. */
  resultDigest?: string;
  resultBytes?: number;
}

export interface JobProgress {
  jobId: string;
  stepId?: string;
  percent?: number;
  message?: string;
  resultPtr?: string;
  artifactPtrs?: string[];
  status?: JobStatus;
  /** Not in CAP: the raw MCP progress values, so the client sees exactly what the upstream reported. */
  progress?: number;
  total?: number;
}

export interface JobCancel {
  jobId: string;
  reason: string;
  requestedBy: string;
}

export interface Heartbeat {
  workerId: string;
  region?: string;
  type?: string;
  cpuLoad?: number;
  gpuUtilization?: number;
  activeJobs: number;
  capabilities: string[];
  pool: string;
  maxParallelJobs: number;
  labels: Record<string, string>;
}

export type BusPayload =
  | { kind: 'jobRequest'; jobRequest: JobRequest }
  | { kind: 'jobResult'; jobResult: JobResult }
  | { kind: 'heartbeat'; heartbeat: Heartbeat }
  | { kind: 'jobProgress'; jobProgress: JobProgress }
  | { kind: 'jobCancel'; jobCancel: JobCancel };

export interface BusPacket {
  traceId: string;
  senderId: string;
  createdAt: number;
  protocolVersion: number;
  payload: BusPayload;
  signature?: Uint8Array;
}

const REPLY_PREFIX = 'sys.job.reply.';
/** One token after the prefix, no wildcard: what `Subjects.reply` makes of a replica's id. */
const REPLY_SUBJECT = new RegExp(`^${REPLY_PREFIX.replaceAll('.', '\\.')}[A-Za-z0-9_-]+$`);

export const Subjects = {
  submit: 'sys.job.submit',
  result: 'sys.job.result',
  progress: 'sys.job.progress',
  cancel: 'sys.job.cancel',
  dlq: 'sys.job.dlq',
  heartbeat: 'sys.heartbeat',
  pool: (pool: string) => `job.${pool}`,
  worker: (workerId: string) => `worker.${workerId}.jobs`,
  /** One replica's results and progress (a job names it in `replyTo`): heard by that replica alone. */
  reply: (replicaId: string) => `${REPLY_PREFIX}${replicaId}`,
} as const;

/** Whether `subject` is a replica's own reply subject (`Subjects.reply`), the only kind a job's `replyTo` may name. */
export const isReplySubject = (subject: string): boolean => REPLY_SUBJECT.test(subject);

export const contextPtr = (jobId: string): string => `ctx:${jobId}`;
export const resultPtr = (jobId: string): string => `res:${jobId}`;
