import { readFileSync } from 'node:fs';
import { isMap, isNode, isScalar, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import type { ErrorCode } from '../errors.ts';
import { humanMessages, invalid, problemsOf, type Problem } from './problems.ts';

export interface LoadedYaml {
  file: string;
  value: unknown;
  /** The 1-based line where the value at `path` starts, when the document has it. */
  lineOf(path: readonly PropertyKey[]): number | undefined;
}

const UNREADABLE: Record<string, string> = {
  ENOENT: 'cannot read it: there is no such file',
  EACCES: 'cannot read it: permission denied',
  EISDIR: 'cannot read it: this is a folder, not a file',
};

/** Reads and parses a YAML file. A file that cannot be read, or any syntax error, is a problem with its line. */
export function loadYamlFile(file: string, code: ErrorCode): LoadedYaml {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? '';
    throw invalid(code, [{ file, path: [], message: UNREADABLE[reason] ?? `cannot read it (${reason || (err as Error).message})` }]);
  }
  return parseYamlText(file, text, code);
}

export function parseYamlText(file: string, text: string, code: ErrorCode): LoadedYaml {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw invalid(
      code,
      doc.errors.map((error) => ({ file, line: error.linePos?.[0]?.line, path: [], message: `invalid YAML: ${error.message.split('\n')[0]}` })),
    );
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
    const node = nodeAt(doc, path.slice(0, depth));
    if (isNode(node) && node.range) return lineCounter.linePos(node.range[0]).line;
  }
  return undefined;
}

/** The node where the value at `path` is written: for a key of a mapping, the key itself (a block value starts below it). */
function nodeAt(doc: Document, path: readonly PropertyKey[]): unknown {
  if (path.length === 0) return doc.contents;
  const parent = doc.getIn(path.slice(0, -1) as unknown[], true);
  const last = path[path.length - 1];
  if (isMap(parent)) return parent.items.find((pair) => String(isScalar(pair.key) ? pair.key.value : pair.key) === String(last))?.key;
  if (isSeq(parent)) return parent.items[Number(last)];
  return undefined;
}

/** Validates a loaded document against a zod schema: the data, or every problem as a sentence at its line. */
export function checkYaml<S extends z.ZodType>(loaded: LoadedYaml, schema: S, value: unknown = loaded.value): { data: z.output<S> } | { problems: Problem[] } {
  const result = schema.safeParse(value, { error: humanMessages });
  if (result.success) return { data: result.data };
  return { problems: problemsOf(loaded.file, loaded.lineOf, result.error.issues, schema) };
}

/** As `checkYaml`, throwing every problem at once (`data.problems`) under `code`. */
export function validateYaml<S extends z.ZodType>(loaded: LoadedYaml, schema: S, code: ErrorCode, value: unknown = loaded.value): z.output<S> {
  const checked = checkYaml(loaded, schema, value);
  if ('problems' in checked) throw invalid(code, checked.problems);
  return checked.data;
}
