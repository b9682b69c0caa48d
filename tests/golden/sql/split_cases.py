"""Statement-splitting golden cases: the original's splitter (sqlparse) is
the oracle. Run by regenerate.py; writes split.json."""

import json
import random

import sqlparse

CASES = [
    "select 1; select 2;",
    "select 1;select 2",
    "select ';' as a; select 'it''s'; select 'back\\'slash;'; select 2",
    'select "a;b" from t; select `x;y` from t2;',
    "select 1; -- trailing comment; still\nselect 2; # hash comment;\nselect 3;",
    "select 1; /* block; comment */ select 2;",
    "/* leading */ select 1;\n\n-- only a comment",
    "select 1 /* a */; select 2 -- c\n;",
    "select $$a;b$$; select $tag$ x; $$ y $tag$; select 3",
    "CREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END; $$ LANGUAGE plpgsql; SELECT f();",
    "CREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END; CALL p();",
    "CREATE OR REPLACE PROCEDURE p() BEGIN IF x THEN SELECT 1; END IF; END; select 2;",
    "CREATE PROCEDURE p() BEGIN DECLARE x INT; WHILE x < 3 DO SET x = x + 1; END WHILE; END; select 9;",
    "create function f() begin case when a then select 1; else select 2; end case; end; select 3;",
    "BEGIN; INSERT INTO t VALUES (1); COMMIT;",
    "BEGIN TRANSACTION; update t set a = 1; END;",
    "begin work; select 1; commit work;",
    "SELECT CASE WHEN a THEN 1 ELSE 2 END FROM t; SELECT 2;",
    "select (1; select 2); select 3;",
    "select [a;b] from t; select x[1] from t;",
    "select 1\nGO\nselect 2\nGO 2\nselect 3",
    "select %(name)s; select %s; select :a; select ?;",
    "select '{\"a\": 1}'::json ->> 'a'; select 2 #- '{a}';",
    "DROP TABLE IF EXISTS t; CREATE TABLE IF NOT EXISTS t (a int);",
    "select 'unterminated; select 2; select 3",
    'select "unterminated; select 2;',
    "select /* unterminated; select 2;",
    "select $$ unterminated; select 2;",
    "select e'\\x41;'; select 2;",
    "   \n\t  ",
    "",
    ";;;",
    "select 1;;select 2",
    "select 1; \n  \n select 2 ;  -- c1\n -- c2\n select 3",
    "--+ hint\nselect 1; /*+ hint */ select 2;",
    "select x.begin, y.end from t; select begin(1); select 2;",
    "insert into t values ('é;ü', 'ß'); select 'ok';",
    "select 1 \r\n; select 2;\r\nselect 3",
    "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW BEGIN SET NEW.a = 1; END; select 1;",
    "DECLARE x int; select 1;",
    "with a as (select 1) select * from a; values (1), (2);",
    "select 1 as \"weird\"\"name;\"; select 2",
    "select 'a' 'b'; select `a``b;c`;",
    "select @var; set @a := 1; select ##tmp from #t;",
    "do $body$ begin perform 1; end $body$; select 2;",
    "select 1 AT TIME ZONE 'UTC;x'; select 2",
    "create table t (a int primary key, b text not null); insert into t values (1, 'a');",
    "select {{ x }}; select '{{ y }}'; {% if a %}select 3;{% endif %}",
    "select 1 -- no newline at end",
    "select 1; # comment without trailing newline",
    "select \\x; \\copy t from 'f'; select 2",
]

FRAGMENTS = [
    "select 1", ";", " ", "\n", "'a;b'", "'it''s'", "\"q;\"", "-- c;\n", "/* x; */",
    "$$ p; $$", "(", ")", "begin", "end", "create procedure p()", "case", "if", "declare",
    "transaction", "commit", "x.begin", "f(", "[b;c]", "`n;m`", "#", "# h;\n", "@v",
    "GO", "\r\n", "é", "\t", "e'\\';'", ":name", "%s", "1.5", "-1",
]


def random_cases(n: int) -> list:
    rng = random.Random(16)
    out = []
    for _ in range(n):
        out.append("".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 14))))
    return out


def generate() -> list:
    return [{"sql": sql, "statements": sqlparse.split(sql.strip())} for sql in CASES + random_cases(400)]


if __name__ == "__main__":
    print(json.dumps(generate(), indent=1, ensure_ascii=False))
