"""The harness's probe DAG: one task, so a run proves the scheduler queued work through Redis,
the Celery worker ran it, and the result went to the result backend through PgBouncer."""

from datetime import datetime

try:  # Airflow 3
    from airflow.providers.standard.operators.python import PythonOperator
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG
    from airflow.operators.python import PythonOperator


def hello():
    print("harness probe: ran on the Celery worker")
    return "ok"


with DAG(
    dag_id="harness_probe",
    start_date=datetime(2024, 1, 1),
    schedule=None,
    catchup=False,
    tags=["harness"],
):
    PythonOperator(task_id="hello", python_callable=hello)
