/**
 * What the poisoning scan of a tool definition found (src/call/definition-scan.ts): recorded on the tool's pin, in
 * the audit trail (`tool.poisoning_suspected`) and shown by `gatehouse tools`. Every text in it is escaped: hidden
 * characters appear as `\u{E0041}`, never raw.
 */
export type FindingKind = 'model-instructions' | 'hidden-unicode' | 'hiding-markup' | 'shadowing';

export const FINDING_KINDS: readonly FindingKind[] = ['model-instructions', 'hidden-unicode', 'hiding-markup', 'shadowing'];

export interface DefinitionFinding {
  kind: FindingKind;
  /** Which rule of the kind: `instruction-block`, `tag-characters`, `steers-other-tool` … */
  rule: string;
  /** Where in the definition: `description`, `inputSchema.properties.path.description`, `….enum[1]`. */
  field: string;
  /** The offending span in that field's text, in UTF-16 code units. */
  span: [number, number];
  /** The span with a little context, every invisible character escaped (`\u{E0041}`): safe to log. */
  excerpt: string;
  /** What hidden tag characters spell, escaped. */
  decoded?: string;
}
