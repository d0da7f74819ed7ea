"""What the harness's Airflow start-up modules share (harness_apiserver, harness_webserver)."""

import gc


def collect_after(owner, name):
    """Turns Python's cyclic garbage collector off until `owner.name` (a server's app loader) has
    run, then on again, with everything built so far frozen out of later collections
    (`gc.freeze`). Start-up allocates millions of long-lived objects and frees almost none, so
    collecting during it is wasted work. Returns False, changing nothing, when `owner` has no
    such method (another version of the server)."""
    load = getattr(owner, name, None)
    if load is None:
        return False

    def load_then_collect(*args, **kwargs):
        try:
            return load(*args, **kwargs)
        finally:
            gc.enable()
            gc.freeze()

    setattr(owner, name, load_then_collect)
    gc.disable()
    return True
