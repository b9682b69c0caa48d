CREATE TABLE t (id int PRIMARY KEY, name text, n decimal(10,2), f double, r float, b boolean,
  ts datetime, ts6 datetime(6), d date, tm time, j json, bin varbinary(10), big bigint, note text, bits bit(8), tiny tinyint);
INSERT INTO t VALUES
 (1, 'plain', 1.50, 1.5, 0.1, true, '2024-05-01 10:00:00', '2024-05-01 10:00:00.5', '2024-05-01', '10:00:00',
  '{"a": 1, "b": [true, null, "x"]}', X'00FF27', 9007199254740993, NULL, b'00000101', 7),
 (2, 'has, comma|pipe', -0.01, 100.0, 3.25, false, '2024-05-01 10:00:00', '2024-12-31 23:59:59.123456',
  '1999-01-01', '-01:00:01', '[1, 2.5, "it''s"]', X'', -1, 'tab\there', b'0', -1),
 (3, 'line\nbreak and\r\nCRLF', 0, 1e20, -2.5e-05, NULL, NULL, NULL, NULL, '838:59:59', 'null', NULL, 0, '', NULL, 0),
 (4, 'üñíçødé ✓ 日本', 12345678.90, 0.30000000000000004, 1e10, true, '1000-01-01 00:00:00',
  '1970-01-01 00:00:00', '2000-02-29', '00:00:00.25', '{"k": {"n": -0.0001}}', X'5C', 2, ' lead space', b'11111111', 127);
CREATE TABLE q (id int, v text);
INSERT INTO q VALUES (1, 'say "hi"'), (2, 'back\\slash'), (3, NULL);
