import { describe, expect, it } from 'vitest';
import { RETRY_TAKEN_TTL_MS, type DeadLetter, type JobLedger, type OpenJob } from '../../src/ports.ts';

/** A fresh, empty ledger, and a way to open another view of its state (another process on the data dir, a replica). */
export type MakeJobLedger = () => Promise<{ ledger: JobLedger; reopen: () => Promise<JobLedger> | JobLedger }>;

export const openJob = (jobId: string, deadline: number, overrides: Partial<OpenJob> = {}): OpenJob => ({
  jobId,
  tenant: 't',
  principal: 'alice',
  server: 'fx',
  tool: 'write',
  pool: 'tools',
  replica: 'gw-a',
  deadline,
  ...overrides,
});

export const deadLetter = (jobId: string, at: number, overrides: Partial<DeadLetter> = {}): DeadLetter => {
  const { deadline: _none, ...facts } = openJob(jobId, 0);
  return {
    ...facts,
    code: 'GH_ERR_EXECUTION_IN_DOUBT',
    message: 'its worker died mid-call',
    at,
    context: { server: 'fx', tool: 'write', arguments: { path: '/tmp/a', big: 12345678901234, nested: [1.5, 'x'] }, constraints: { timeoutMs: 5_000 }, wantsProgress: false },
    ...overrides,
  };
};

/** What every JobLedger adapter must do. `advance` moves the clock the adapter's lock expiry follows (or waits) by ms. */
export function runJobLedgerContract(name: string, makeLedger: MakeJobLedger, advance: (ms: number) => Promise<void>): void {
  let reopen: () => Promise<JobLedger> | JobLedger = () => {
    throw new Error('make a ledger first');
  };
  const make = async (): Promise<JobLedger> => {
    const made = await makeLedger();
    reopen = made.reopen;
    return made.ledger;
  };

  describe(`JobLedger contract: ${name}`, () => {
    it('overdue returns only open jobs past their deadline, earliest first, up to the limit', async () => {
      const ledger = await make();
      await ledger.open(openJob('J3', 300));
      await ledger.open(openJob('J1', 100));
      await ledger.open(openJob('J2', 200));
      await ledger.open(openJob('J9', 900));
      expect(await ledger.overdue(50, 10)).toEqual([]);
      expect((await ledger.overdue(300, 10)).map((j) => j.jobId)).toEqual(['J1', 'J2', 'J3']);
      expect((await ledger.overdue(300, 2)).map((j) => j.jobId)).toEqual(['J1', 'J2']);
      await ledger.finish('J2');
      await ledger.finish('unknown');
      expect(await ledger.overdue(1_000, 10)).toEqual([openJob('J1', 100), openJob('J3', 300), openJob('J9', 900)]);
      await ledger.close();
    });

    it('open again moves the deadline of a job', async () => {
      const ledger = await make();
      await ledger.open(openJob('J1', 100));
      await ledger.open(openJob('J1', 500));
      expect(await ledger.overdue(400, 10)).toEqual([]);
      expect(await ledger.overdue(500, 10)).toEqual([openJob('J1', 500)]);
      await ledger.close();
    });

    it('keeps dead letters with their context intact, oldest first, and drops them', async () => {
      const ledger = await make();
      const a = deadLetter('01JA', 2_000, { code: 'GH_ERR_NO_WORKER', message: 'no live worker serves pool tools' });
      const b = deadLetter('01JB', 1_000);
      await ledger.deadLetter(a);
      await ledger.deadLetter(b);
      expect(await ledger.getDead('01JA')).toEqual(a);
      expect(await ledger.listDead()).toEqual([b, a]);
      expect(await ledger.getDead('nope')).toBeUndefined();
      expect(await ledger.getDead('../../etc/passwd')).toBeUndefined();
      expect(await ledger.removeDead('01JB')).toBe(true);
      expect(await ledger.removeDead('01JB')).toBe(false);
      expect(await ledger.listDead()).toEqual([a]);
      await ledger.close();
    });

    it('shares the DLQ with another process or replica on the same state', async () => {
      const ledger = await make();
      const other = await reopen();
      await ledger.deadLetter(deadLetter('01JC', 5));
      expect((await other.getDead('01JC'))?.code).toBe('GH_ERR_EXECUTION_IN_DOUBT');
      expect((await other.requestRetry('01JC', 'bob', 10))?.retry).toEqual({ requestedAt: 10, requestedBy: 'bob' });
      expect((await ledger.getDead('01JC'))?.retry).toEqual({ requestedAt: 10, requestedBy: 'bob' });
      await other.close();
      await ledger.close();
    });

    it('hands each retry request to exactly one taker, oldest request first, and keeps the entry until removed', async () => {
      const ledger = await make();
      const other = await reopen();
      expect(await ledger.requestRetry('absent', 'bob', 1)).toBeUndefined();
      for (const id of ['01JD', '01JE', '01JF']) await ledger.deadLetter(deadLetter(id, 1));
      await ledger.requestRetry('01JE', 'bob', 20);
      await ledger.requestRetry('01JD', 'bob', 30);
      // A second request keeps the first.
      expect((await ledger.requestRetry('01JE', 'carol', 40))?.retry).toEqual({ requestedAt: 20, requestedBy: 'bob' });
      const taken = await Promise.all([ledger.takeRetry('gw-a', 50), other.takeRetry('gw-b', 50), ledger.takeRetry('gw-a', 50), other.takeRetry('gw-b', 50)]);
      const ids = taken.filter((t) => t !== undefined).map((t) => t.jobId);
      expect(ids.sort()).toEqual(['01JD', '01JE']);
      const first = taken.find((t) => t?.jobId === '01JE')!;
      expect(first.retry).toMatchObject({ requestedAt: 20, requestedBy: 'bob', takenAt: 50 });
      expect(['gw-a', 'gw-b']).toContain(first.retry?.takenBy);
      expect(first.context).toEqual(deadLetter('01JE', 1).context);
      // Taken, not removed: shown as retrying, and not taken again, nor requested anew.
      expect((await ledger.getDead('01JE'))?.retry?.takenBy).toBe(first.retry?.takenBy);
      expect((await ledger.requestRetry('01JE', 'carol', 60))?.retry?.takenBy).toBe(first.retry?.takenBy);
      expect(await ledger.takeRetry('gw-a', 70)).toBeUndefined();
      expect((await ledger.getDead('01JF'))?.retry).toBeUndefined();
      await other.close();
      await ledger.close();
    });

    it('offers a retry again once it stayed taken RETRY_TAKEN_TTL_MS (its taker is gone), to one taker', async () => {
      const ledger = await make();
      const other = await reopen();
      await ledger.deadLetter(deadLetter('01JK', 1));
      await ledger.requestRetry('01JK', 'bob', 2);
      expect((await ledger.takeRetry('gw-dead', 100))?.jobId).toBe('01JK');
      expect(await ledger.takeRetry('gw-a', 100 + RETRY_TAKEN_TTL_MS - 1)).toBeUndefined();
      const due = 100 + RETRY_TAKEN_TTL_MS;
      const taken = (await Promise.all([ledger.takeRetry('gw-a', due), other.takeRetry('gw-b', due)])).filter((t) => t !== undefined);
      expect(taken).toHaveLength(1);
      expect(taken[0]).toMatchObject({ jobId: '01JK', context: deadLetter('01JK', 1).context, retry: { requestedAt: 2, requestedBy: 'bob', takenAt: due } });
      expect((await ledger.getDead('01JK'))?.retry).toEqual(taken[0].retry);
      // Taken anew: not offered again before another RETRY_TAKEN_TTL_MS, nor ever once removed.
      expect(await ledger.takeRetry('gw-c', due + 1)).toBeUndefined();
      expect(await ledger.removeDead('01JK')).toBe(true);
      expect(await ledger.takeRetry('gw-c', due + 2 * RETRY_TAKEN_TTL_MS)).toBeUndefined();
      await other.close();
      await ledger.close();
    });

    it('forgets a retry request with its entry', async () => {
      const ledger = await make();
      await ledger.deadLetter(deadLetter('01JG', 1));
      await ledger.requestRetry('01JG', 'bob', 2);
      expect(await ledger.removeDead('01JG')).toBe(true);
      expect(await ledger.takeRetry('gw-a', 3)).toBeUndefined();
      await ledger.deadLetter(deadLetter('01JG', 4));
      expect((await ledger.getDead('01JG'))?.retry).toBeUndefined();
      await ledger.close();
    });

    it('keeps a retry request when the same job is dead-lettered again', async () => {
      const ledger = await make();
      await ledger.deadLetter(deadLetter('01JH', 1));
      await ledger.requestRetry('01JH', 'bob', 2);
      await ledger.deadLetter(deadLetter('01JH', 3, { code: 'GH_ERR_UPSTREAM_TIMEOUT' }));
      expect(await ledger.getDead('01JH')).toMatchObject({ at: 3, code: 'GH_ERR_UPSTREAM_TIMEOUT', retry: { requestedBy: 'bob' } });
      await ledger.close();
    });

    it('two holders never both hold a lock, even when raced; the holder renews it', async () => {
      const ledger = await make();
      const won = await Promise.all(Array.from({ length: 20 }, (_, i) => ledger.acquireLock('reconciler', `gw-${i}`, 10_000)));
      expect(won.filter(Boolean)).toHaveLength(1);
      const holder = `gw-${won.indexOf(true)}`;
      expect(await ledger.acquireLock('reconciler', holder, 10_000)).toBe(true);
      expect(await ledger.acquireLock('reconciler', 'gw-other', 10_000)).toBe(false);
      expect(await ledger.acquireLock('another-lock', 'gw-other', 10_000)).toBe(true);
      await ledger.releaseLock('reconciler', 'gw-other'); // not the holder's: changes nothing
      expect(await ledger.acquireLock('reconciler', 'gw-other', 10_000)).toBe(false);
      await ledger.releaseLock('reconciler', holder);
      expect(await ledger.acquireLock('reconciler', 'gw-other', 10_000)).toBe(true);
      await ledger.close();
    });

    it('a lock whose holder stopped renewing expires, and another takes it', async () => {
      const ledger = await make();
      expect(await ledger.acquireLock('reconciler', 'gw-a', 1_000)).toBe(true);
      await advance(600);
      expect(await ledger.acquireLock('reconciler', 'gw-a', 1_000)).toBe(true); // renewed: due 1 s from now
      await advance(600);
      expect(await ledger.acquireLock('reconciler', 'gw-b', 1_000)).toBe(false);
      await advance(1_200);
      expect(await ledger.acquireLock('reconciler', 'gw-b', 1_000)).toBe(true);
      expect(await ledger.acquireLock('reconciler', 'gw-a', 1_000)).toBe(false);
      await ledger.close();
    });
  });
}
