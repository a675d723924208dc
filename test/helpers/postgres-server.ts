import { chownSync, existsSync, readdirSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { userInfo } from 'node:os';
import { startServerProcess } from './server-process.ts';

/**
 * A PostgreSQL for the suites that need one: the machine's on 127.0.0.1:5432 (trust auth) when it answers, else a
 * throwaway cluster of Debian's binaries (`.ci/run` installs them when neither is there): initdb and postgres in a
 * temp dir on a free loopback port, trust auth, no fsync. GATEHOUSE_TEST_OWN_PG=1 always starts its own.
 */
export interface Postgres {
  readonly port: number;
  /** Whether this is a cluster the helper started (and `stop` removes). */
  readonly own: boolean;
  url(database: string): string;
  /** Runs SQL as the superuser `postgres` and returns psql's unaligned, tuples-only output. */
  psql(database: string, sql: string): string;
  stop(): Promise<void>;
}

const MACHINE_PORT = 5432;
const ownWanted = process.env.GATEHOUSE_TEST_OWN_PG === '1';

/** The newest `/usr/lib/postgresql/<major>/bin` holding initdb, or GATEHOUSE_PG_BIN. */
export function postgresBinDir(): string | undefined {
  if (process.env.GATEHOUSE_PG_BIN) return process.env.GATEHOUSE_PG_BIN;
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const majors = readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
  return majors.map((v) => join(root, v, 'bin')).find((bin) => existsSync(join(bin, 'initdb')));
}

const psqlAt = (psql: string, port: number) => (database: string, sql: string) =>
  execFileSync(psql, ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', database, '-tAc', sql], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();

function machineAnswers(own = ownWanted): boolean {
  if (own) return false;
  return spawnSync('psql', ['-h', '127.0.0.1', '-p', String(MACHINE_PORT), '-U', 'postgres', '-w', '-tAc', 'select 1'], { encoding: 'utf8' }).status === 0;
}

/**
 * Whether a PostgreSQL can be had here, the machine's or one of our own. Neither: the suite skips, loudly, except on
 * CI (`CI=true`), where it fails.
 */
export function postgresAvailable(suite: string): boolean {
  if (machineAnswers() || postgresBinDir() !== undefined) return true;
  const missing = 'no PostgreSQL answers on 127.0.0.1:5432 (trust auth) and no initdb under /usr/lib/postgresql/*/bin (apt-get install postgresql, or point GATEHOUSE_PG_BIN at the binaries).';
  if (process.env.CI === 'true') throw new Error(`${missing} CI=true, so the ${suite} fails instead of skipping.`);
  console.warn(`\n⚠ ${missing} The ${suite} is SKIPPED.\n`);
  return false;
}

/** The machine's PostgreSQL, or (with `own`, GATEHOUSE_TEST_OWN_PG=1, or none answering) a throwaway cluster. */
export async function startPostgres(options: { own?: boolean } = {}): Promise<Postgres> {
  if (machineAnswers(options.own ?? ownWanted)) return { port: MACHINE_PORT, own: false, url: (db) => `postgresql://postgres@127.0.0.1:${MACHINE_PORT}/${db}`, psql: psqlAt('psql', MACHINE_PORT), stop: async () => undefined };
  const bin = postgresBinDir();
  if (!bin) throw new Error('no PostgreSQL binaries: call postgresAvailable first');
  // PostgreSQL refuses to run as root: as root (CI, containers), the cluster is the postgres user's.
  const user = userInfo().uid === 0 ? postgresUser() : undefined;
  const data = (dir: string) => join(dir, 'data');
  const server = await startServerProcess(
    join(bin, 'postgres'),
    (port, dir) => ['-D', data(dir), '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'],
    {
      user,
      startTimeoutMs: 30_000,
      prepare: (_port, dir) => {
        if (user) chownSync(dir, user.uid, user.gid);
        const init = spawnSync(join(bin, 'initdb'), ['-D', data(dir), '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale=C'], { encoding: 'utf8', ...(user ?? {}) });
        if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr || init.error?.message}`);
      },
    },
  );
  const psql = psqlAt(existsSync(join(bin, 'psql')) ? join(bin, 'psql') : 'psql', server.port);
  await untilQueriesAnswer(psql, 30_000);
  return { port: server.port, own: true, url: (db) => `postgresql://postgres@127.0.0.1:${server.port}/${db}`, psql, stop: () => server.stop() };
}

/** PostgreSQL accepts connections before it takes queries ("the database system is starting up"): wait for a query. */
async function untilQueriesAnswer(psql: (database: string, sql: string) => string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      psql('postgres', 'select 1');
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

function postgresUser(): { uid: number; gid: number } {
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  try {
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    throw new Error('running as root, and there is no postgres user to run PostgreSQL as (Debian\'s postgresql package creates it)');
  }
}
