import type { AuditRecord } from '../../src/protocol/audit-record.ts';

/** An OTLP `AnyValue` in the protobuf JSON mapping (int64 as a decimal string). */
type AnyValue = { stringValue: string } | { intValue: string };
interface KeyValue {
  key: string;
  value: AnyValue;
}

const str = (key: string, value: string): KeyValue => ({ key, value: { stringValue: value } });
const int = (key: string, value: number): KeyValue => ({ key, value: { intValue: String(value) } });

/** What the records' `data` often names, lifted into attributes a SIEM can filter on without parsing the body. */
const DATA_ATTRIBUTES: readonly [field: string, attribute: string][] = [
  ['tool', 'gen_ai.tool.name'],
  ['server', 'gatehouse.upstream'],
  ['session', 'mcp.session.id'],
  ['effect', 'gatehouse.decision'],
  ['approvalId', 'gatehouse.approval.id'],
  ['code', 'error.type'],
];

/** OTLP severity: INFO, or WARN (13) for the records that say something went wrong or was refused. */
const severityOf = (type: string): { severityNumber: number; severityText: string } =>
  /\.(failed|denied|timeout|expired|repaired|in_doubt)$/.test(type) ? { severityNumber: 13, severityText: 'WARN' } : { severityNumber: 9, severityText: 'INFO' };

/**
 * An `ExportLogsServiceRequest` (OTLP/HTTP, JSON encoding) with one log record per audit record: the record itself,
 * whole, as the body (so its hash can be checked downstream), and its facts as attributes.
 */
export function otlpLogsRequest(records: readonly AuditRecord[], instance: string): unknown {
  return {
    resourceLogs: [
      {
        resource: { attributes: [str('service.name', 'gatehouse'), str('service.instance.id', instance)] },
        scopeLogs: [{ scope: { name: 'gatehouse.audit' }, logRecords: records.map(logRecord) }],
      },
    ],
  };
}

function logRecord(record: AuditRecord): unknown {
  const attributes = [
    str('gatehouse.tenant', record.tenant),
    int('gatehouse.audit.seq', record.seq),
    str('gatehouse.audit.hash', record.hash),
    str('gatehouse.audit.prev', record.prev),
    str('gatehouse.audit.type', record.type),
    str('gatehouse.actor', record.actor),
    ...(record.jobId ? [str('gatehouse.job.id', record.jobId)] : []),
  ];
  for (const [field, attribute] of DATA_ATTRIBUTES) {
    const value = record.data[field];
    if (typeof value === 'string') attributes.push(str(attribute, value));
  }
  const nanos = `${BigInt(record.at) * 1_000_000n}`;
  return { timeUnixNano: nanos, observedTimeUnixNano: nanos, ...severityOf(record.type), eventName: record.type, body: { stringValue: JSON.stringify(record) }, attributes };
}
