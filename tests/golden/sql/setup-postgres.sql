CREATE TABLE t (id int PRIMARY KEY, name text, n numeric(10,2), f float8, r real, b boolean,
  ts timestamp, tstz timestamptz, d date, tm time, iv interval, j jsonb, bin bytea, big bigint, note text);
INSERT INTO t VALUES
 (1, 'plain', 1.50, 1.5, 0.1, true, '2024-05-01 10:00:00', '2024-05-01 10:00:00+00', '2024-05-01', '10:00:00',
  '1 day 02:00:00', '{"a": 1, "b": [true, null, "x"]}', '\x00ff27', 9007199254740993, NULL),
 (2, 'has, comma|pipe', -0.01, 100.0, 3.25, false, '2024-05-01 10:00:00.5', '2024-12-31 23:59:59.123456+00',
  '1999-01-01', '23:59:59.25', '-00:00:01.5', '[1, 2.5, "it''s"]', '', -1, E'tab\there'),
 (3, E'line\nbreak and\r\nCRLF', 0, 1e20, -2.5e-05, NULL, NULL, NULL, NULL, NULL, NULL, 'null', NULL, 0, ''),
 (4, 'üñíçødé ✓ 日本', 12345678.90, 0.30000000000000004, 1e10, true, '0001-01-01 00:00:00',
  '1970-01-01 00:00:00+00', '2000-02-29', '00:00:00', '00:00:00', '{"k": {"n": -0.0001}}', '\x5c', 2, ' lead space');
CREATE TABLE q (id int, v text);
INSERT INTO q VALUES (1, 'say "hi"'), (2, E'back\\slash'), (3, NULL);
