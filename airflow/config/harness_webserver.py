"""Airflow 2's webserver, started the quick way: `python -m harness_webserver`.

`airflow webserver` imports Airflow, then runs `python -m gunicorn --preload
airflow.www.app:cached_app()` as a second process, which imports Airflow again and builds the
Flask app, and then watches it (GunicornMonitor, rolling worker restarts). This module runs that
same gunicorn command in-process: the same app, configuration hook (airflow.www.gunicorn_config)
and Airflow settings (host, port, workers, worker class, timeout from [webserver]), without the
first import and the monitor. Python's garbage collector is off until the app is loaded, as in
harness_apiserver.py. `--no-control-socket`: gunicorn would otherwise put a control socket at a
fixed path in the home directory, shared by every run on the machine.

Stand-alone on an idle machine: /health answers after about 3.1 s, against 7-10 s through
`airflow webserver`. The harness uses `airflow webserver` itself when E2E_AIRFLOW_FAST_API=0.
"""

import sys


def main():
    from gunicorn.app import wsgiapp
    from harness_startup import collect_after

    collect_after(wsgiapp.WSGIApplication, "load_wsgiapp")
    from airflow.configuration import conf

    # The check `airflow webserver` makes before starting: never serve with the shipped key.
    if conf.get("webserver", "secret_key") == "temporary_key":
        sys.exit("harness_webserver: [webserver] secret_key is the insecure default; set a random one")
    host = conf.get("webserver", "web_server_host")
    port = conf.getint("webserver", "web_server_port")
    sys.argv = [
        "gunicorn",
        "--workers",
        str(conf.getint("webserver", "workers")),
        "--worker-class",
        conf.get("webserver", "worker_class"),
        "--timeout",
        str(conf.getint("webserver", "web_server_worker_timeout")),
        "--bind",
        f"{host}:{port}",
        "--name",
        "airflow-webserver",
        "--config",
        "python:airflow.www.gunicorn_config",
        "--no-control-socket",
        "--access-logfile",
        "-",
        "--error-logfile",
        "-",
        "--preload",
        "airflow.www.app:cached_app()",
    ]
    wsgiapp.run()


if __name__ == "__main__":
    main()
