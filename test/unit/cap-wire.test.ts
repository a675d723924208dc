import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { create, fromBinary, toBinary, type Message } from '@bufbuild/protobuf';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { TimestampSchema } from '@bufbuild/protobuf/wkt';
import { describe, expect, it } from 'vitest';
import { capWire, decodeBusPacket, encodeBusPacket } from '../../src/protocol/cap-wire.ts';
import {
  type BusPacket,
  type BusPayload,
  type JobRequest,
  CAP_PROTOCOL_VERSION,
  JobPriority,
  JobStatus,
  SafetyDecision,
} from '../../src/protocol/cap.ts';
import * as pb from '../../src/protocol/gen/cordum/agent/v1/cap_pb.ts';
import { isGatewayError } from '../../src/errors.ts';

// Golden bytes live in test/fixtures/cap-golden/<type>.hex. CAP_GOLDEN_UPDATE=1 rewrites them: only do that for
// a deliberate wire change, and say so in the commit.
const GOLDEN = new URL('../fixtures/cap-golden/', import.meta.url);
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const unhex = (text: string) => new Uint8Array(Buffer.from(text.replace(/\s+/g, ''), 'hex'));

const packet = (payload: BusPayload, extra: Partial<BusPacket> = {}): BusPacket => ({
  traceId: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
  senderId: 'gw-1',
  createdAt: 1_767_225_600_123,
  protocolVersion: CAP_PROTOCOL_VERSION,
  payload,
  ...extra,
});

const samples: Record<string, BusPacket> = {
  'job-request': packet(
    {
      kind: 'jobRequest',
      jobRequest: {
        jobId: '01JABCDEFGHJKMNPQRSTVWXYZ0',
        topic: 'mcp.github.create_issue',
        priority: JobPriority.INTERACTIVE,
        contextPtr: 'ctx:01JABCDEFGHJKMNPQRSTVWXYZ0',
        adapterId: 'mcp',
        env: { locale: 'en' },
        parentJobId: 'parent-1',
        workflowId: 'wf-1',
        stepIndex: 2,
        memoryId: 'mem-1',
        contextHints: '{"maxInputTokens":100,"allowRetrieval":true,"tags":["code"]}',
        budget: { maxInputTokens: 1000, maxOutputTokens: 2000, maxTotalTokens: 3000, deadlineMs: 30_000 },
        tenantId: 'acme',
        principalId: 'alice',
        labels: { 'mcp.server': 'github', 'mcp.tool': 'create_issue', 'mcp.session': 's-1' },
        meta: {
          tenantId: 'acme',
          actorId: 'alice',
          actorType: 'human',
          idempotencyKey: 'idem-1',
          capability: 'create_issue',
          riskTags: ['write', 'open-world'],
          requires: ['network-egress'],
          packId: 'github',
          labels: { team: 'core' },
        },
      },
    },
    { signature: new Uint8Array([1, 2, 3, 255]) },
  ),
  'job-result': packet({
    kind: 'jobResult',
    jobResult: {
      jobId: 'job-1',
      status: JobStatus.FAILED,
      resultPtr: 'res:job-1',
      workerId: 'worker-7',
      executionMs: 1234,
      errorCode: 'GH_ERR_UPSTREAM_ERROR',
      errorMessage: 'boom',
      artifactPtrs: ['art:1', 'art:2'],
    },
  }),
  heartbeat: packet({
    kind: 'heartbeat',
    heartbeat: {
      workerId: 'worker-7',
      region: 'eu-west',
      type: 'cpu-tools',
      cpuLoad: 12.5,
      gpuUtilization: 0.25,
      activeJobs: 3,
      capabilities: ['mcp.github'],
      pool: 'default',
      maxParallelJobs: 8,
      labels: { zone: 'a' },
    },
  }),
  'job-progress': packet({
    kind: 'jobProgress',
    jobProgress: {
      jobId: 'job-1',
      stepId: 'step-1',
      percent: 40,
      message: 'halfway-ish',
      resultPtr: 'res:job-1:partial',
      artifactPtrs: ['art:log'],
      status: JobStatus.RUNNING,
      progress: 4,
      total: 10,
    },
  }),
  'job-cancel': packet({
    kind: 'jobCancel',
    jobCancel: { jobId: 'job-1', reason: 'client cancelled', requestedBy: 'alice' },
  }),
};

describe('CAP wire: golden bytes', () => {
  for (const [name, sample] of Object.entries(samples)) {
    it(`${name} encodes to the pinned bytes and decodes back`, () => {
      const bytes = encodeBusPacket(sample);
      const file = new URL(`${name}.hex`, GOLDEN);
      if (process.env.CAP_GOLDEN_UPDATE === '1') writeFileSync(file, `${hex(bytes)}\n`);
      expect(hex(bytes)).toBe(readFileSync(file, 'utf8').trim());
      expect(decodeBusPacket(unhex(readFileSync(file, 'utf8')))).toEqual(sample);
    });
  }

  it('a JobCancel packet is the protobuf wire format byte for byte (checked by hand)', () => {
    const bytes = encodeBusPacket({
      traceId: 't',
      senderId: 's',
      createdAt: 1500,
      protocolVersion: 1,
      payload: { kind: 'jobCancel', jobCancel: { jobId: 'j', reason: 'r', requestedBy: 'u' } },
    });
    // tag = (field << 3) | wire type; 0 = varint, 2 = length-delimited.
    const expected = [
      '0a 01 74', // 1 trace_id, LEN 1, "t"
      '12 01 73', // 2 sender_id, "s"
      '1a 08 08 01 10 80 ca b5 ee 01', // 3 created_at, LEN 8: Timestamp { 1 seconds = 1, 2 nanos = 500_000_000 }
      '20 01', // 4 protocol_version = 1
      '82 01 09', // 16 job_cancel: (16 << 3) | 2 = 130 = varint 82 01, LEN 9
      '0a 01 6a 12 01 72 1a 01 75', // JobCancel: 1 job_id "j", 2 reason "r", 3 requested_by "u"
    ].join(' ');
    expect(hex(bytes)).toBe(expected.replace(/ /g, ''));
  });

  it('the payload oneof uses CAP field numbers 10, 11, 12, 15, 16', () => {
    const firstPayloadTag = (name: string) => {
      const { payload } = samples[name];
      return hex(encodeBusPacket({ traceId: '', senderId: '', createdAt: 0, protocolVersion: 0, payload })).slice(0, 4);
    };
    expect(firstPayloadTag('job-request').slice(0, 2)).toBe('52'); // (10 << 3) | 2
    expect(firstPayloadTag('job-result').slice(0, 2)).toBe('5a'); // 11
    expect(firstPayloadTag('heartbeat').slice(0, 2)).toBe('62'); // 12
    expect(firstPayloadTag('job-progress').slice(0, 2)).toBe('7a'); // 15
    expect(firstPayloadTag('job-cancel')).toBe('8201'); // 16
  });
});

describe('CAP wire: schema', () => {
  it('src/protocol/gen/ is what `npm run gen:proto` makes of proto/ today', () => {
    const root = fileURLToPath(new URL('../../', import.meta.url));
    const out = mkdtempSync(join(tmpdir(), 'cap-gen-'));
    try {
      execFileSync(join(root, 'node_modules/.bin/buf'), ['generate', '--template', 'proto/buf.gen.yaml', '-o', out], {
        cwd: root,
        stdio: 'pipe',
      });
      const file = 'src/protocol/gen/cordum/agent/v1/cap_pb.ts';
      expect(readFileSync(join(out, file), 'utf8')).toBe(readFileSync(join(root, file), 'utf8'));
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});

describe('CAP wire: enums', () => {
  it("the core's enums have the schema's numbers", () => {
    const pairs: [Record<string, string | number>, Record<string, string | number>][] = [
      [JobStatus, pb.JobStatus],
      [JobPriority, pb.JobPriority],
      [SafetyDecision, pb.DecisionType],
    ];
    for (const [core, wire] of pairs) {
      const numbers = (e: Record<string, string | number>) => Object.entries(e).filter(([, n]) => typeof n === 'number');
      expect(numbers(core)).toEqual(numbers(wire));
    }
  });
});

describe('CAP wire: edge cases', () => {
  it('an empty/default packet is the payload tag alone and decodes to defaults', () => {
    const empty: BusPacket = {
      traceId: '',
      senderId: '',
      createdAt: 0,
      protocolVersion: 0,
      payload: { kind: 'jobCancel', jobCancel: { jobId: '', reason: '', requestedBy: '' } },
    };
    expect(hex(encodeBusPacket(empty))).toBe('820100');
    expect(decodeBusPacket(unhex('820100'))).toEqual(empty);
  });

  it('defaults of optional fields decode as absent; required ones as zero values', () => {
    const required = {
      jobId: 'j',
      topic: 't',
      priority: JobPriority.UNSPECIFIED,
      contextPtr: 'ctx:j',
      env: {},
      tenantId: '',
      principalId: '',
      labels: {},
      meta: { tenantId: '', actorId: '', actorType: '', capability: '', riskTags: [], requires: [], labels: {} },
    };
    const bytes = encodeBusPacket(
      packet({ kind: 'jobRequest', jobRequest: { ...required, adapterId: '', stepIndex: 0, budget: {} } }),
    );
    expect(decodeBusPacket(bytes).payload).toEqual({ kind: 'jobRequest', jobRequest: { ...required, budget: {} } });
  });

  it('unicode strings, large maps and negative numbers round-trip', () => {
    const labels: Record<string, string> = {};
    for (let i = 0; i < 2000; i++) labels[`k-${i}-ключ-🔑`] = `v-${i}-値-${'é'.repeat(i % 7)}`;
    const sample = packet({
      kind: 'jobResult',
      jobResult: {
        jobId: 'ジョブ-😀',
        status: JobStatus.SUCCEEDED,
        workerId: 'wörker\u0000nul',
        executionMs: -42,
        errorMessage: '𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ✓',
      },
    });
    expect(decodeBusPacket(encodeBusPacket(sample))).toEqual(sample);

    const beat = packet({
      kind: 'heartbeat',
      heartbeat: {
        workerId: 'w',
        cpuLoad: -1.5,
        activeJobs: -3,
        capabilities: [],
        pool: 'p',
        maxParallelJobs: 2_147_483_647,
        labels,
      },
    });
    const decoded = decodeBusPacket(encodeBusPacket(beat));
    expect(decoded).toEqual(beat);
    expect(Object.keys((decoded.payload as { heartbeat: { labels: object } }).heartbeat.labels)).toHaveLength(2000);

    const budget = { maxInputTokens: Number.MAX_SAFE_INTEGER, deadlineMs: -1 };
    const req = structuredClone(samples['job-request']);
    (req.payload as { jobRequest: { budget: object } }).jobRequest.budget = budget;
    expect(decodeBusPacket(encodeBusPacket(req))).toEqual(req);

    const before = packet({ kind: 'jobCancel', jobCancel: { jobId: 'j', reason: '', requestedBy: '' } }, { createdAt: -1500 });
    expect(decodeBusPacket(encodeBusPacket(before)).createdAt).toBe(-1500);
  });

  it('an actor type CAP cannot name travels in the Gatehouse field and comes back exactly', () => {
    const sample = structuredClone(samples['job-request']);
    const { meta } = (sample.payload as { jobRequest: { meta: { actorType: string } } }).jobRequest;
    meta.actorType = 'user';
    const message = fromBinary(pb.BusPacketSchema, encodeBusPacket(sample));
    const wireMeta = (message.payload.value as pb.JobRequest).meta!;
    expect(wireMeta.actorType).toBe(pb.ActorType.HUMAN);
    expect(wireMeta.gatehouseActorType).toBe('user');
    expect(decodeBusPacket(encodeBusPacket(sample))).toEqual(sample);
  });

  it("a job's reply subject travels in the Gatehouse field and comes back exactly; a CAP peer's job without it decodes none", () => {
    const sample = structuredClone(samples['job-request']);
    const job = (sample.payload as { jobRequest: JobRequest }).jobRequest;
    job.replyTo = 'sys.job.reply.gw-1';
    const wire = fromBinary(pb.BusPacketSchema, encodeBusPacket(sample)).payload.value as pb.JobRequest;
    expect(wire.gatehouseReplyTo).toBe('sys.job.reply.gw-1');
    expect(decodeBusPacket(encodeBusPacket(sample))).toEqual(sample);
    expect(Object.keys((decodeBusPacket(encodeBusPacket(samples['job-request'])).payload as { jobRequest: object }).jobRequest)).not.toContain('replyTo');
  });

  it("a result's digest and size travel in the Gatehouse fields and come back exactly; a CAP peer without them decodes none", () => {
    const result = packet({ kind: 'jobResult', jobResult: { jobId: 'j', status: JobStatus.SUCCEEDED, workerId: 'w', executionMs: 3, resultDigest: 'sha256:ab', resultBytes: 12_345 } });
    const wire = (fromBinary(pb.BusPacketSchema, encodeBusPacket(result)).payload.value as pb.JobResult);
    expect([wire.gatehouseResultDigest, wire.gatehouseResultBytes]).toEqual(['sha256:ab', 12_345n]);
    expect(decodeBusPacket(encodeBusPacket(result))).toEqual(result);
    const plain = packet({ kind: 'jobResult', jobResult: { jobId: 'j', status: JobStatus.SUCCEEDED, workerId: 'w', executionMs: 3 } });
    expect(Object.keys((decodeBusPacket(encodeBusPacket(plain)).payload as { jobResult: object }).jobResult)).not.toContain('resultDigest');
  });

  it('malformed bytes and unencodable packets are GH_ERR_WIRE_INVALID', () => {
    const bad = [
      'ff', // truncated varint
      '0a05 6162', // LEN 5 with 2 bytes
      '0f', // wire type 7 does not exist
      '8201 03 0a 05', // nested message cut short
      '', // no payload
      '6a00', // an alert: not for Gatehouse
      '8a0100', // payload field 17 (a newer CAP's handshake): unknown here, so no payload
    ];
    for (const text of bad) {
      expect(() => decodeBusPacket(unhex(text)), text).toThrow(
        expect.objectContaining({ code: 'GH_ERR_WIRE_INVALID' }),
      );
    }
    const withFraction = packet({
      kind: 'jobResult',
      jobResult: { jobId: 'j', status: JobStatus.SUCCEEDED, workerId: 'w', executionMs: 1.5 },
    });
    expect(() => encodeBusPacket(withFraction)).toThrow(expect.objectContaining({ code: 'GH_ERR_WIRE_INVALID' }));
    const badHints = structuredClone(samples['job-request']);
    (badHints.payload as { jobRequest: { contextHints: string } }).jobRequest.contextHints = '{"nope":1}';
    try {
      encodeBusPacket(badHints);
      expect.unreachable();
    } catch (err) {
      expect(isGatewayError(err, 'GH_ERR_WIRE_INVALID')).toBe(true);
    }
  });
});

describe('CAP wire: unknown fields of a newer CAP', () => {
  // Unknown fields in every message: what CAP 1.x added later (auth_token 18, compensation 17, memory_load 14 …)
  // and made-up ones, of every wire type.
  const unknown = (no: number, build: (w: BinaryWriter) => void, wireType = WireType.LengthDelimited) => {
    const w = new BinaryWriter();
    build(w);
    return { no, wireType, data: w.finish() };
  };
  const str = (no: number, text: string) => unknown(no, (w) => w.string(text));
  const varint = (no: number, n: number) => unknown(no, (w) => w.int32(n), WireType.Varint);
  const fixed32 = (no: number, f: number) => unknown(no, (w) => w.float(f), WireType.Bit32);
  const fixed64 = (no: number, n: bigint) => unknown(no, (w) => w.fixed64(n), WireType.Bit64);
  const withUnknown = <T extends Message>(m: T, ...fields: ReturnType<typeof unknown>[]): T => {
    m.$unknown = fields;
    return m;
  };
  const ts = (seconds: bigint, nanos: number) =>
    withUnknown(create(TimestampSchema, { seconds, nanos }), varint(9, 1));

  const newer = (payload: pb.BusPacket['payload']) =>
    toBinary(
      pb.BusPacketSchema,
      withUnknown(
        create(pb.BusPacketSchema, {
          traceId: 'trace',
          senderId: 'cap-worker',
          createdAt: ts(1_767_225_600n, 123_456_789),
          protocolVersion: 1,
          payload,
        }),
        str(18, 'auth-token'),
        fixed64(99, 7n),
      ),
    );

  const payloads: Record<string, pb.BusPacket['payload']> = {
    jobRequest: {
      case: 'jobRequest',
      value: withUnknown(
        create(pb.JobRequestSchema, {
          jobId: 'j',
          topic: 'job.default',
          contextHints: withUnknown(create(pb.ContextHintsSchema, { maxInputTokens: 5 }), varint(5, 1)),
          budget: withUnknown(create(pb.BudgetSchema, { deadlineMs: 10n }), varint(5, 300)),
          meta: withUnknown(
            create(pb.JobMetadataSchema, { tenantId: 't', actorType: pb.ActorType.SERVICE }),
            str(10, 'future-meta'),
          ),
        }),
        unknown(17, (w) => w.bytes(new BinaryWriter().tag(1, WireType.LengthDelimited).string('job.undo').finish())), // compensation { topic }
      ),
    },
    jobResult: {
      case: 'jobResult',
      value: withUnknown(create(pb.JobResultSchema, { jobId: 'j', status: 10 as pb.JobStatus }), fixed32(9, 1.5)),
    },
    heartbeat: {
      case: 'heartbeat',
      value: withUnknown(create(pb.HeartbeatSchema, { workerId: 'w', pool: 'p' }), fixed32(14, 42.5)),
    },
    jobProgress: {
      case: 'jobProgress',
      value: withUnknown(create(pb.JobProgressSchema, { jobId: 'j', percent: 50 }), str(8, 'future')),
    },
    jobCancel: {
      case: 'jobCancel',
      value: withUnknown(create(pb.JobCancelSchema, { jobId: 'j' }), varint(4, -1)),
    },
  };

  for (const [kind, payload] of Object.entries(payloads)) {
    it(`${kind}: decode → encode gives the same bytes`, () => {
      const bytes = newer(payload);
      const decoded = decodeBusPacket(bytes);
      expect(hex(encodeBusPacket(decoded))).toBe(hex(bytes));
    });

    it(`${kind}: the unknown fields survive a change the core makes by spreading`, () => {
      const decoded = decodeBusPacket(newer(payload));
      const changed: BusPacket = { ...decoded, senderId: 'gw-2' };
      const again = fromBinary(pb.BusPacketSchema, encodeBusPacket(changed));
      expect(again.senderId).toBe('gw-2');
      expect(again.$unknown?.map((f) => f.no)).toEqual([18, 99]);
      expect((again.payload.value as Message).$unknown?.length).toBe(1);
      expect(again.createdAt?.nanos).toBe(123_456_789);
    });
  }

  it('the kept message is an enumerable symbol, only there when something needs keeping', () => {
    const decoded = decodeBusPacket(newer(payloads.jobCancel));
    expect(Object.getOwnPropertySymbols(decoded)).toContain(capWire);
    expect(Object.getOwnPropertySymbols(decodeBusPacket(encodeBusPacket(samples['job-cancel'])))).toEqual([]);
  });

  it('an unknown enum value of a newer CAP round-trips as its number', () => {
    const decoded = decodeBusPacket(newer(payloads.jobResult));
    expect((decoded.payload as { jobResult: { status: number } }).jobResult.status).toBe(10);
  });
});
