import { randomFillSync } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/**
 * Monotonic ULIDs: 48 bits of milliseconds, 80 bits of randomness. Within one millisecond the random part is
 * incremented, so ids sort in creation order even under load.
 */
export class UlidGenerator {
  private lastTime = -1;
  private lastRandom: Uint8Array = new Uint8Array(10);

  constructor(private readonly now: () => number = Date.now) {}

  next(): string {
    const time = this.now();
    if (time === this.lastTime) {
      incrementBytes(this.lastRandom);
    } else {
      this.lastTime = time;
      this.lastRandom = takeRandom(10);
    }
    return encodeTime(time) + encodeRandom(this.lastRandom);
  }
}

// Randomness drawn from the OS in blocks: one system call per 400 ids instead of one per id.
const pool = new Uint8Array(4000);
let poolOffset = pool.length;

function takeRandom(n: number): Uint8Array {
  if (poolOffset + n > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const out = new Uint8Array(pool.subarray(poolOffset, poolOffset + n));
  poolOffset += n;
  return out;
}

function encodeTime(time: number): string {
  let out = '';
  let t = time;
  for (let i = 0; i < 10; i++) {
    out = ALPHABET[t % 32] + out;
    t = Math.floor(t / 32);
  }
  return out;
}

function encodeRandom(bytes: Uint8Array): string {
  // 80 bits -> 16 base32 characters, read 5 bits at a time.
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += ALPHABET[(buffer >> bits) & 31];
    }
    buffer &= (1 << bits) - 1;
  }
  return out;
}

function incrementBytes(bytes: Uint8Array): void {
  for (let i = bytes.length - 1; i >= 0; i--) {
    if (bytes[i] === 255) {
      bytes[i] = 0;
    } else {
      bytes[i]++;
      return;
    }
  }
}

const shared = new UlidGenerator();
export const ulid = (): string => shared.next();
