import type { JobRequest } from '../protocol/cap.ts';
import type { JobTracker } from './job-tracker.ts';

/** What `job.submitted` records besides what the job itself says (its digests, session and trace). */
export interface SubmittedFacts {
  argsDigest: string;
  toolDigest: string;
  /** The MCP method, for a request other than `tools/call`. */
  method?: string;
  session?: string;
  /** The client's name, version and era, for the console's sessions. */
  client?: { name?: string; version?: string; era: string };
  traceparent?: string;
  /** A retry after the upstream asked for input: which round of the same job this is (1 for the first retry). */
  round?: number;
}

/** Who ends a job before it is dispatched: the kernel's decision, a constraint, or the approval it waited on. */
export type EndedBy = 'kernel' | 'enforcement' | 'approvals';

/**
 * The steps of a job before it is dispatched, as the governed call asks for them: submitted, decided, denied, held
 * for a human, parked on a pending approval, or answered without its upstream. The call asks; the job state
 * machine moves, here and in the Scheduler once the job is dispatched, so every transition of a job happens in
 * src/scheduler/.
 */
export class JobSteps {
  constructor(private readonly jobs: JobTracker) {}

  /** The job exists: `job.submitted`, from the CAP job itself (topic, server, the capability policies see). */
  submit(job: JobRequest, facts: SubmittedFacts): void {
    const { argsDigest, toolDigest, method, session, client, traceparent, round } = facts;
    // Keys in JCS order: the audit trail hashes this object as it is, where one out of order is sorted and copied.
    this.jobs.submit(job.jobId, job.tenantId, job.principalId, {
      argsDigest,
      ...(client ? { client } : {}),
      ...(method ? { method } : {}),
      ...(round ? { round } : {}),
      server: job.labels['mcp.server'],
      ...(session ? { session } : {}),
      tool: job.meta.capability,
      toolDigest,
      topic: job.topic,
      ...(traceparent ? { traceparent } : {}),
    });
  }

  /** The round ended with the upstream asking the client for input (relayed): the retry is the same job, next round. */
  inputRequired(job: JobRequest, data: { round: number; methods: string[] }): void {
    this.jobs.inputRequired(job.jobId, job.tenantId, data);
  }

  /** The kernel's decision on the job (`job.decided`), with the input it decided on. */
  decided(jobId: string, decided: Record<string, unknown>): void {
    this.jobs.note(jobId, 'job.decided', 'kernel', decided);
  }

  /** The job never runs: the policy, a constraint or limit, or its approval refused it. */
  deny(jobId: string, by: EndedBy, data: Record<string, unknown>): void {
    this.jobs.move(jobId, 'DENIED', by, data);
  }

  /** The job waits for a human (once per call, with the channel that asks). */
  holdForApproval(jobId: string, data: Record<string, unknown>): void {
    this.jobs.move(jobId, 'APPROVAL_REQUIRED', 'kernel', data);
  }

  /** The approval it waited on ended the job: denied, expired, withdrawn or cancelled. */
  endByApproval(jobId: string, state: 'DENIED' | 'CANCELLED', data: Record<string, unknown>): void {
    this.jobs.move(jobId, state, 'approvals', data);
  }

  /** The call returned while its approval is pending: its retry will be a job of its own. */
  park(jobId: string): void {
    this.jobs.release(jobId);
  }

  /** The upstream need not be asked (it already holds what was requested): the job succeeds without dispatch. */
  answerWithoutUpstream(jobId: string, data: Record<string, unknown>): void {
    this.jobs.move(jobId, 'SUCCEEDED', 'gateway', data);
  }

  /** An event about the job that moves no state. */
  note(jobId: string, type: string, actor: string, data: Record<string, unknown>): void {
    this.jobs.note(jobId, type, actor, data);
  }
}
