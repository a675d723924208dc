import { describe, expect, it } from 'vitest';
import { postgresAvailable, postgresBinDir, startPostgres } from '../helpers/postgres-server.ts';

// Where no PostgreSQL runs (a fresh CI machine), the postgres suites run against a cluster the helper starts from
// Debian's binaries. This forces that path, so a machine that has PostgreSQL on 5432 still proves it works.
const available = postgresAvailable('own-PostgreSQL helper test') && postgresBinDir() !== undefined;
if (!available) console.warn('\n⚠ no initdb under /usr/lib/postgresql/*/bin: the own-PostgreSQL helper test is SKIPPED.\n');

describe.skipIf(!available)('a throwaway PostgreSQL cluster (GATEHOUSE_TEST_OWN_PG=1)', () => {
  it('starts on a free port other than 5432, takes SQL with trust auth, and is gone after stop', async () => {
    const pg = await startPostgres({ own: true });
    try {
      expect(pg.own).toBe(true);
      expect(pg.port).not.toBe(5432);
      pg.psql('postgres', 'CREATE DATABASE scratch');
      pg.psql('scratch', "CREATE TABLE t (v text); INSERT INTO t VALUES ('kept')");
      expect(pg.psql('scratch', 'SELECT v FROM t')).toBe('kept');
      expect(pg.url('scratch')).toBe(`postgresql://postgres@127.0.0.1:${pg.port}/scratch`);
    } finally {
      await pg.stop();
    }
    expect(() => pg.psql('postgres', 'select 1')).toThrow();
  }, 60_000);
});
