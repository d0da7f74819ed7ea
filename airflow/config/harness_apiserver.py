"""Airflow 3's api-server with a faster start: `python -m harness_apiserver api-server [ARGS...]`.

The api-server's start-up is the longest step of the full flow, and most of it is not Airflow:
FastAPI builds a route object for every endpoint each time a router is included in another
(Airflow nests its routers, so its 215 endpoints become 825 route objects), and for every
parameter of every one of them it compiles a pydantic validator at once. Only the outermost copy
of each route ever serves a request, and most endpoints are never called in a run.

Three changes, all inside the start-up and none visible to a request:
- a parameter's validator (`ModelField._type_adapter`) is compiled the first time it is used
  instead of when the route is built, so the discarded inner copies never compile one;
- a callable's signature is read once instead of once per route copy and per dependency use;
- Python's cyclic garbage collector is off until uvicorn has loaded the app (start-up allocates
  millions of long-lived objects and frees almost none, so each collection is wasted work), then
  on again, with what start-up built frozen out of later collections (`gc.freeze`).

What a request sees is the same: the same validator, compiled from the same field, on first use.
Set E2E_AIRFLOW_FAST_API=0 to start the api-server exactly as Airflow ships it.
"""

import sys


def install():
    """Patch FastAPI's route construction; returns False when this FastAPI's internals differ."""
    try:
        from fastapi._compat import v2
        from fastapi.dependencies import utils as dep_utils
    except ImportError:
        return False
    model_field = getattr(v2, "ModelField", None)
    compile_validator = getattr(model_field, "__post_init__", None)
    read_signature = getattr(dep_utils, "_get_signature", None)
    if compile_validator is None or read_signature is None:
        return False

    def type_adapter(self):
        try:
            return self.__dict__["_harness_type_adapter"]
        except KeyError:
            compile_validator(self)  # assigns through the setter below
            return self.__dict__["_harness_type_adapter"]

    def set_type_adapter(self, value):
        self.__dict__["_harness_type_adapter"] = value

    model_field._type_adapter = property(type_adapter, set_type_adapter)
    model_field.__post_init__ = lambda self: None

    # Keyed by identity, holding the callable so its id is never reused while cached.
    signatures = {}

    def signature(call):
        hit = signatures.get(id(call))
        if hit is not None and hit[0] is call:
            return hit[1]
        sig = read_signature(call)
        signatures[id(call)] = (call, sig)
        return sig

    dep_utils._get_signature = signature
    return True


def collect_after_app_load():
    """No garbage collection until uvicorn has loaded the app; False when uvicorn differs."""
    from harness_startup import collect_after

    try:
        from uvicorn.config import Config
    except ImportError:
        return False
    return collect_after(Config, "load")


def main(argv):
    import os

    if os.environ.get("E2E_AIRFLOW_FAST_API", "1") not in ("0", "false"):
        if not (collect_after_app_load() and install()):
            print(
                "harness_apiserver: this uvicorn's or FastAPI's internals differ; "
                "starting without some of the start-up changes",
                file=sys.stderr,
                flush=True,
            )
    sys.argv = ["airflow", *argv]
    from airflow.__main__ import main as airflow_main

    airflow_main()


if __name__ == "__main__":
    main(sys.argv[1:])
