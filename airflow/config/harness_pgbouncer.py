"""Connect arguments for Airflow 3's metadata engines behind PgBouncer in transaction mode.

PgBouncer (1.18, without max_prepared_statements) hands each transaction to whichever server
connection is free, so a prepared statement made in one transaction is missing, or already taken,
in the next. Airflow 3.3 runs on SQLAlchemy 2.1, whose default PostgreSQL driver is psycopg 3: it
prepares a statement on the server after five executions and then fails with
`prepared statement "_pg3_0" already exists`. Its async engine (asyncpg) prepares every statement.
Named by import path in AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS(_ASYNC).
"""

import uuid

# psycopg 3: never prepare on the server.
SYNC = {"prepare_threshold": None}


def _statement_name():
    return f"__asyncpg_{uuid.uuid4()}__"


# asyncpg: no statement cache, and a unique name per statement (SQLAlchemy's recipe for
# PgBouncer), together with prepared_statement_cache_size=0 in the URL.
ASYNC = {"statement_cache_size": 0, "prepared_statement_name_func": _statement_name}
