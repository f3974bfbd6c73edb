"""Installs the test network guard (``tests/helpers/netguard.py``) in every Python process a
test starts: the test session puts this directory on ``PYTHONPATH`` and names the log in
``DOORBELL_NETGUARD_LOG``. Loaded by path, so it works in interpreters that cannot import
``tests`` (a bare Lambda venv)."""

import os

if os.environ.get("DOORBELL_NETGUARD_LOG"):
    import importlib.util
    import sys

    _path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "netguard.py")
    _spec = importlib.util.spec_from_file_location("_doorbell_netguard", _path)
    if _spec is not None and _spec.loader is not None:
        _module = importlib.util.module_from_spec(_spec)
        sys.modules[_spec.name] = _module
        _spec.loader.exec_module(_module)
        _module.install_from_env()
