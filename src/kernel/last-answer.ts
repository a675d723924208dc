/**
 * A text reader that keeps its last answer: the rules of one decision (an allow and a deny rule on the same
 * argument) read the same text, and the reading is the costly part. A copy is returned each time, so no caller
 * can change what the next one gets.
 */
export function keepingLastAnswer(read: (text: string) => string[]): (text: string) => string[] {
  let last: { text: string; answer: readonly string[] } | undefined;
  return (text) => {
    if (last?.text !== text) last = { text, answer: read(text) };
    return [...last.answer];
  };
}
