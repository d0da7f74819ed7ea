"""A fork server for Airflow's components: Airflow is imported once, then each component is forked.

Importing Airflow costs 2-3 s of CPU per process; five components importing at once on two cores
spend most of their start-up doing the same work. The server (`serve`) imports Airflow and the
modules the components need, then waits on a Unix socket. A launcher (`run`) is what the harness
starts for each component, in its own process group: it hands the server its stdin/stdout/stderr
and its process group, the server forks, and the child joins the launcher's process group, so
stopping that group (SIGTERM, grace, SIGKILL) stops the component exactly as if it had been
started directly. The launcher ignores SIGTERM and exits with the component's exit code.
"""

import json
import os
import signal
import socket
import struct
import sys

PRELOAD = [
    "airflow",
    "airflow.cli.cli_parser",
    "airflow.jobs.scheduler_job_runner",
    "airflow.jobs.triggerer_job_runner",
    "airflow.jobs.dag_processor_job_runner",
    "airflow.dag_processing.manager",
    # The execution API the triggerer and dag-processor serve in-process (Airflow 3); the
    # api-server itself is never forked.
    "airflow.api_fastapi.execution_api.app",
    "airflow.providers.celery.executors.celery_executor",
    "airflow.providers.celery.cli.celery_command",
    "airflow.models.dag",
    "psycopg2",
    "asyncpg",
    "uvicorn",
]


def serve(path):
    import gc
    import importlib
    import importlib.util

    # Importing allocates millions of long-lived objects and frees few: collecting during it is
    # wasted CPU that the api-server, starting beside this import, could use.
    gc.disable()
    # Airflow 3's triggerer and dag-processor build the execution API's FastAPI app in-process
    # (InProcessExecutionAPI): the same deferred validators as the api-server's
    # (harness_apiserver.py) make that cheaper, and every forked component inherits them.
    fast = os.environ.get("E2E_AIRFLOW_FAST_API", "1") not in ("0", "false")
    if fast and importlib.util.find_spec("fastapi") is not None:  # Airflow 2 has no FastAPI
        import harness_apiserver

        if not harness_apiserver.install():
            print("forkserver: this FastAPI's internals differ; components start unpatched", flush=True)
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception as e:  # a module another version lacks: the child imports what it needs
            print(f"forkserver: not preloaded {name}: {type(e).__name__}", flush=True)
    try:
        from airflow import settings

        settings.dispose_orm()
    except Exception:
        pass
    # What the import built is frozen out of later collections, in this server and in every
    # forked component (which also keeps those pages shared instead of copied on collection).
    gc.enable()
    gc.freeze()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # reap forked components automatically
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(16)
    print("forkserver ready", flush=True)
    while True:
        conn, _ = srv.accept()
        msg, fds, _, _ = socket.recv_fds(conn, 65536, 3)
        req = json.loads(msg)
        if os.fork() == 0:
            srv.close()
            _child(conn, fds, req)
        for fd in fds:
            os.close(fd)
        conn.close()


def _child(conn, fds, req):
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setpgid(0, req["pgid"])
        for i, fd in enumerate(fds):
            os.dup2(fd, i)
            os.close(fd)
        os.environ.update(req.get("env", {}))
        if req.get("nice"):
            os.nice(req["nice"])
        try:
            from airflow import settings

            settings.configure_orm()
        except Exception:
            pass
        sys.argv = req["argv"]
        from airflow.__main__ import main

        try:
            main()
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            conn.sendall(struct.pack("!i", code))
        except OSError:
            pass
        os._exit(code)


def run(path, argv, nice):
    # The harness stops the whole process group; the component shuts down in its grace period and
    # this launcher reports how it ended.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(path)
    # `@env:NAME` stands for a secret in this launcher's environment: the forked component gets
    # the value over the socket, and no command line ever shows it.
    argv = [os.environ[a[5:]] if a.startswith("@env:") else a for a in argv]
    # The fork server's environment is the deployment's; HARNESS_FORKSERVER_ENV names the few
    # variables this one component sets differently.
    names = [n for n in os.environ.get("HARNESS_FORKSERVER_ENV", "").split(",") if n]
    env = {n: os.environ[n] for n in names if n in os.environ}
    req = {"argv": ["airflow", *argv], "pgid": os.getpgrp(), "nice": nice, "env": env}
    socket.send_fds(conn, [json.dumps(req).encode()], [0, 1, 2])
    data = b""
    while len(data) < 4:
        chunk = conn.recv(4 - len(data))
        if not chunk:
            sys.exit(1)
        data += chunk
    sys.exit(struct.unpack("!i", data)[0])


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve(sys.argv[2])
    elif sys.argv[1:2] == ["run"]:
        nice = int(os.environ.get("HARNESS_FORKSERVER_NICE", "0"))
        run(sys.argv[2], sys.argv[3:], nice)
    else:
        sys.exit("usage: harness_forkserver serve SOCKET | run SOCKET AIRFLOW-ARGS...")
