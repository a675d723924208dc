import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { call, codeOf, packSuite, serverBin, stdio, textOf } from '../helpers/pack-suite.ts';

// Each bundled pack against the real server package it was written for (see test/helpers/pack-suite.ts).

const workspace = mkdtempSync(join(tmpdir(), 'gh-pack-fs-'));
packSuite(
  'filesystem',
  () => {
    writeFileSync(join(workspace, 'notes.md'), 'hello from the workspace');
    mkdirSync(join(workspace, '.ssh'), { recursive: true });
    writeFileSync(join(workspace, '.ssh', 'id_rsa'), 'PRIVATE KEY');
    return { upstream: stdio([serverBin('@modelcontextprotocol/server-filesystem'), workspace]), params: { workspace } };
  },
  ({ client }) => {
    it('allows a read inside the workspace', async () => {
      const read = await call(client(), 'filesystem__read_text_file', { path: join(workspace, 'notes.md') });
      expect(read.isError).toBeFalsy();
      expect(textOf(read)).toContain('hello from the workspace');
      const job = read._meta?.['gatehouse/job'] as { ruleIds: string[] };
      expect(job.ruleIds).toEqual(expect.arrayContaining(['filesystem/inside-workspace', 'filesystem/read-cap']));
    });

    it('holds a write for approval, and writes nothing meanwhile', async () => {
      const target = join(workspace, 'new.md');
      const write = await call(client(), 'filesystem__write_file', { path: target, content: 'x' });
      expect(codeOf(write)).toBe('GH_ERR_APPROVAL_PENDING');
      expect(existsSync(target)).toBe(false);
    });

    it('denies taking .ssh/id_rsa away (a move is the delete this server has) and overwriting it', async () => {
      const key = join(workspace, '.ssh', 'id_rsa');
      const move = await call(client(), 'filesystem__move_file', { source: key, destination: join(workspace, 'k') });
      expect(codeOf(move)).toBe('GH_ERR_PATH_DENIED');
      const write = await call(client(), 'filesystem__write_file', { path: key, content: '' });
      expect(codeOf(write)).toBe('GH_ERR_PATH_DENIED');
      expect(readFileSync(key, 'utf8')).toBe('PRIVATE KEY');
    });

    it('denies a traversal out of the workspace', async () => {
      const read = await call(client(), 'filesystem__read_text_file', { path: `${workspace}/../../etc/passwd` });
      expect(codeOf(read)).toBe('GH_ERR_PATH_DENIED');
      expect(textOf(read)).not.toContain('root:');
    });
  },
);

const memoryDir = mkdtempSync(join(tmpdir(), 'gh-pack-memory-'));
packSuite(
  'memory',
  () => ({ upstream: stdio([serverBin('@modelcontextprotocol/server-memory')], { MEMORY_FILE_PATH: join(memoryDir, 'memory.jsonl') }), params: {} }),
  ({ client }) => {
    it('lets the agent add and read, holds a delete for a human, and refuses a write over maxWriteBytes', async () => {
      const created = await call(client(), 'memory__create_entities', { entities: [{ name: 'alice', entityType: 'person', observations: ['likes tea'] }] });
      expect(created.isError).toBeFalsy();
      expect(textOf(await call(client(), 'memory__read_graph', {}))).toContain('likes tea');
      expect(codeOf(await call(client(), 'memory__delete_entities', { entityNames: ['alice'] }))).toBe('GH_ERR_APPROVAL_PENDING');
      expect(textOf(await call(client(), 'memory__open_nodes', { names: ['alice'] }))).toContain('alice');
      const flood = await call(client(), 'memory__add_observations', { observations: [{ entityName: 'alice', contents: ['x'.repeat(70_000)] }] });
      expect(codeOf(flood)).toBe('GH_ERR_ARGS_TOO_LARGE');
    });
  },
);

// The machine's PostgreSQL (trust auth on 127.0.0.1:5432): the suite creates its own database and drops it after.
const psql = (db: string, sql: string) => execFileSync('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-d', db, '-tAc', sql], { encoding: 'utf8' }).trim();
const postgresUp = spawnSync('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-tAc', 'select 1'], { encoding: 'utf8' }).status === 0;
if (!postgresUp && process.env.CI === 'true') throw new Error('the postgres pack suite needs PostgreSQL on 127.0.0.1:5432');
if (!postgresUp) console.warn('skipping the postgres pack suite: no PostgreSQL on 127.0.0.1:5432');
const database = `gh_pack_${process.pid}_${Date.now()}`;
packSuite(
  'postgres',
  () => {
    psql('postgres', `CREATE DATABASE ${database}`);
    psql(database, "CREATE TABLE users (id int, name text); INSERT INTO users VALUES (1, 'ada')");
    return {
      upstream: stdio([serverBin('@modelcontextprotocol/server-postgres'), `postgresql://postgres@127.0.0.1:5432/${database}`]),
      params: {},
      cleanup: () => psql('postgres', `DROP DATABASE IF EXISTS ${database} WITH (FORCE)`),
    };
  },
  ({ client }) => {
    it('allows a SELECT', async () => {
      const read = await call(client(), 'postgres__query', { sql: 'SELECT name FROM users WHERE id = 1' });
      expect(read.isError).toBeFalsy();
      expect(textOf(read)).toContain('ada');
    });

    it('refuses DROP TABLE in three disguises, and the table stays', async () => {
      for (const sql of ['/* only a read */ dRoP\n TaBlE users', 'SELECT 1; drop table users', 'COMMIT; DROP TABLE users']) {
        expect(codeOf(await call(client(), 'postgres__query', { sql })), sql).toBe('GH_ERR_POLICY_DENIED');
      }
      expect(psql(database, 'SELECT count(*) FROM users')).toBe('1');
    });
  },
  postgresUp ? {} : { skip: 'no PostgreSQL' },
);
