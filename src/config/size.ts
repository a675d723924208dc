import { z } from 'zod';

const UNITS: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4 };
const SIZE = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|TiB)$/;

/** Parses `512KiB`, `64MiB`, `10GiB` (powers of 1024) or `100B` into bytes; undefined when the text is not a size. */
export function parseSize(text: string): number | undefined {
  const match = SIZE.exec(text.trim());
  if (!match) return undefined;
  return Math.round(Number(match[1]) * UNITS[match[2]]);
}

/** A zod field that takes a size string (or a whole number of bytes) and yields bytes, at least `min`. */
export function sizeBytes(min: number) {
  return z.union([z.number(), z.string()]).transform((value, ctx) => {
    const bytes = typeof value === 'number' ? (Number.isInteger(value) ? value : undefined) : parseSize(value);
    if (bytes === undefined) {
      ctx.addIssue({ code: 'custom', message: `expected a size such as 512KiB, 64MiB or 10GiB (or a number of bytes), got ${JSON.stringify(value)}` });
      return z.NEVER;
    }
    if (bytes < min) {
      ctx.addIssue({ code: 'custom', message: `expected at least ${min} bytes, got ${bytes}` });
      return z.NEVER;
    }
    return bytes;
  });
}
