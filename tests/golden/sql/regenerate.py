#!/usr/bin/env python3
"""Regenerates the SQL goldens with the original lava (jinlava) as the
oracle. Run from the repository root with the test venv's Python, with this
machine's PostgreSQL (127.0.0.1:5432, trust) and MariaDB (127.0.0.1:3306,
root without password) up:

    .venv/bin/python tests/golden/sql/regenerate.py

Writes:
* split.json: statement-splitting cases and sqlparse's statements
  (split_cases.py);
* <engine>/<case>/…: for every case of cases.json, the files the original
  `sqli` handler writes, and result.json (the output file names, or the
  error). The handler runs unchanged on its own drivers (pg8000, pymysql),
  connected through the original's own connector functions; only the
  connections-table lookup and the S3 upload are replaced (the upload
  copies the file into the golden directory).

Each engine gets a throwaway database, dropped afterwards.
"""

import datetime
import json
import os
import shutil
import sys
import tempfile
import uuid

import pg8000.native
import pymysql

import lava.handlers.sqli as sqli
from lava.connection.mysql import py_connect_mysql
from lava.connection.postgres import py_connect_pg8000

HERE = os.path.dirname(os.path.abspath(__file__))
ENGINES = ("postgres", "mariadb")


def statements(path):
    with open(path) as f:
        text = f.read()
    return [s.strip() for s in text.split(";\n") if s.strip()]


def create(engine, name):
    setup = statements(os.path.join(HERE, f"setup-{engine}.sql"))
    if engine == "postgres":
        admin = pg8000.native.Connection("postgres", host="127.0.0.1", database="postgres")
        admin.run(f'CREATE DATABASE "{name}"')
        admin.run(f"ALTER DATABASE \"{name}\" SET timezone = 'UTC'")
        admin.close()
        db = pg8000.native.Connection("postgres", host="127.0.0.1", database=name)
        for s in setup:
            db.run(s)
        db.close()
    else:
        admin = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
        with admin.cursor() as c:
            c.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
            c.execute(f"USE `{name}`")
            for s in setup:
                c.execute(s)
        admin.close()


def drop(engine, name):
    if engine == "postgres":
        admin = pg8000.native.Connection("postgres", host="127.0.0.1", database="postgres")
        admin.run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
    else:
        admin = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
        with admin.cursor() as c:
            c.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


def conn_spec(engine, name):
    if engine == "postgres":
        return {"host": "127.0.0.1", "port": 5432, "user": "postgres", "password": "x", "database": name}
    return {"host": "127.0.0.1", "port": 3306, "user": "root", "password": "", "database": name}


class NoAws:
    """Stands for the boto3 session: the replaced upload needs no client."""

    def client(self, *args, **kwargs):
        return None


def run_case(engine, dbname, case, outdir):
    def connect(conn_id, realm, autocommit=False, aws_session=None, application_name=None):
        spec = conn_spec(engine, dbname)
        if engine == "postgres":
            return py_connect_pg8000(spec, autocommit=autocommit, application_name=application_name)
        return py_connect_mysql(spec, autocommit=autocommit, application_name=application_name)

    uploaded = []

    def upload(bucket, key, filename, s3_client=None, kms_key=None):
        rel = key.split("/golden-run/", 1)[1]
        dest = os.path.join(outdir, rel)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copyfile(filename, dest)
        uploaded.append(rel)

    sqli.get_pysql_connection = connect
    sqli.s3_upload = upload
    job = {
        "job_id": "golden/sql",
        "run_id": "golden-run",
        "realm": "golden",
        "type": "sqli",
        "payload": case["payload"],
        "parameters": dict(case["parameters"], conn_id="db"),
        "globals": {},
        "state": {},
        "ts_start": datetime.datetime(2024, 5, 1, 10, 0, tzinfo=datetime.timezone.utc),
    }
    with tempfile.TemporaryDirectory() as tmp:
        try:
            result = sqli.run(job, {"realm": "golden"}, tmp, "s3://bucket/tmp/golden-run", aws_session=NoAws())
            outcome = {"output": {k: [u.split("/golden-run/", 1)[1] for u in v] for k, v in result["output"].items()}}
        except Exception as e:  # the run's failure is part of the golden
            outcome = {"error": str(e)}
    with open(os.path.join(outdir, "result.json"), "w") as f:
        json.dump(outcome, f, indent=1, ensure_ascii=False)
        f.write("\n")


def main():
    sys.path.insert(0, HERE)
    import split_cases

    with open(os.path.join(HERE, "split.json"), "w") as f:
        json.dump(split_cases.generate(), f, indent=1, ensure_ascii=False)
        f.write("\n")
    with open(os.path.join(HERE, "cases.json")) as f:
        cases = json.load(f)
    for engine in ENGINES:
        name = f"lava_golden_{uuid.uuid4().hex[:10]}"
        create(engine, name)
        try:
            shutil.rmtree(os.path.join(HERE, engine), ignore_errors=True)
            for case in cases:
                if engine not in case.get("engines", ENGINES):
                    continue
                outdir = os.path.join(HERE, engine, case["name"])
                os.makedirs(outdir)
                run_case(engine, name, case, outdir)
        finally:
            drop(engine, name)


if __name__ == "__main__":
    main()
