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

/**
 * A reader of one text that keeps its last reading, or the error it threw: the rules of one decision read the same
 * argument (a path under two rules, a URL for an egress rule and an allow rule). The reading is shared, so it is
 * frozen.
 */
export function keepingLastReading<T extends object>(read: (text: string) => T): (text: string) => Readonly<T> {
  let last: { text: string; reading?: Readonly<T>; error?: unknown } | undefined;
  return (text) => {
    if (last?.text !== text) {
      try {
        last = { text, reading: Object.freeze(read(text)) };
      } catch (error) {
        last = { text, error };
      }
    }
    if (last.reading === undefined) throw last.error;
    return last.reading;
  };
}
