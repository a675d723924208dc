import { writeSync } from 'node:fs';
import { appendFile, open } from 'node:fs/promises';
import { replaceFile } from './atomic-file.ts';

/** The file system calls that write a chain, apart so a test can fill the disk. */
export interface ChainFileIo {
  /**
   * Appends the bytes to the chain file held open (O_APPEND) as `fd`, before returning: a small batch costs one
   * write(2) this way, while the thread pool costs a round trip of ~0.1 ms. Throws when they were not all written.
   */
  appendSync(fd: number, data: Buffer): void;
  /** Appends the bytes through the thread pool, creating the file; for batches too large to block the event loop on. */
  append(path: string, data: Buffer): Promise<void>;
  /** fsync of a file or a directory. */
  sync(path: string): Promise<void>;
  /** Writes a small file whole (temp file + rename) through the thread pool: the head file. */
  replace(path: string, content: string): Promise<void>;
}

export const fileIo: ChainFileIo = {
  appendSync: (fd, data) => {
    // A regular file takes all of a write or fails, but a signal or a nearly full disk can cut one short.
    for (let done = 0; done < data.length; ) done += writeSync(fd, data, done, data.length - done);
  },
  append: (path, data) => appendFile(path, data, { mode: 0o600 }),
  sync: async (path) => {
    const handle = await open(path, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  },
  replace: replaceFile,
};
