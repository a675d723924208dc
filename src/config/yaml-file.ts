import { readFileSync } from 'node:fs';
import { isNode, LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { GatewayError, type ErrorCode } from '../errors.ts';
import { formatPath } from './interpolate.ts';

export interface LoadedYaml {
  file: string;
  value: unknown;
  /** The 1-based line where the value at `path` starts, when the document has it. */
  lineOf(path: readonly PropertyKey[]): number | undefined;
}

/** Reads and parses a YAML file. Syntax errors name the file and line. */
export function loadYamlFile(file: string, code: ErrorCode): LoadedYaml {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new GatewayError(code, `${file}: cannot read the file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, {
      cause: err,
      data: { file },
    });
  }
  return parseYamlText(file, text, code);
}

export function parseYamlText(file: string, text: string, code: ErrorCode): LoadedYaml {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const first = doc.errors[0];
    const line = first.linePos?.[0]?.line;
    throw new GatewayError(code, `${file}${line ? `:${line}` : ''}: invalid YAML: ${first.message.split('\n')[0]}`, {
      data: { file, line },
    });
  }
  return {
    file,
    value: doc.toJS() ?? {},
    lineOf: (path) => lineOfPath(doc, lineCounter, path),
  };
}

function lineOfPath(doc: Document, lineCounter: LineCounter, path: readonly PropertyKey[]): number | undefined {
  // Walk up the path until a node with a source range is found: a missing key points at its parent.
  for (let depth = path.length; depth >= 0; depth--) {
    const node = doc.getIn(path.slice(0, depth) as unknown[], true);
    if (isNode(node) && node.range) return lineCounter.linePos(node.range[0]).line;
  }
  return undefined;
}

/** Validates a loaded document against a zod schema; the error lists every issue as `file:line: key.path: problem`. */
export function validateYaml<S extends z.ZodType>(loaded: LoadedYaml, schema: S, code: ErrorCode, value: unknown = loaded.value): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const line = loaded.lineOf(issue.path);
    return `${loaded.file}${line ? `:${line}` : ''}: ${formatPath(issue.path)}: ${issue.message}`;
  });
  throw new GatewayError(code, problems.join('\n'), {
    data: { file: loaded.file, issues: result.error.issues.map((i) => ({ path: i.path, message: i.message, line: loaded.lineOf(i.path) })) },
  });
}
