import { describe, expect, it } from 'vitest';
import { sqlStatements } from '../../src/kernel/sql.ts';

describe('sqlStatements: what a SQL text runs', () => {
  it('reads DROP TABLE the same in every disguise', () => {
    for (const sql of ['DROP TABLE t', 'drop table t', '/* harmless */ dRoP\n\tTABLE t', 'SELECT 1; DROP TABLE t', 'select 1 -- x\n; drop table t;', '/* a /* nested */ comment */DROP TABLE t']) {
      expect(sqlStatements(sql), sql).toContain('DROP TABLE T');
    }
  });

  it('keeps literals and quoted identifiers from looking like keywords', () => {
    expect(sqlStatements("SELECT 'x; DROP TABLE t' AS a")).toEqual(['SELECT ? AS A']);
    expect(sqlStatements('SELECT "drop table" FROM t')).toEqual(['SELECT "?" FROM T']);
    expect(sqlStatements("SELECT $$; drop table t$$, $q$it's$q$")).toEqual(['SELECT ?, ?']);
    expect(sqlStatements("SELECT E'\\'; DROP TABLE t' ")).toEqual(['SELECT ?']);
  });

  it('refuses what it cannot read', () => {
    for (const sql of ["SELECT 'open", 'SELECT "open', 'SELECT 1 /* open', 'SELECT $x$ open']) expect(() => sqlStatements(sql), sql).toThrow();
  });
});
