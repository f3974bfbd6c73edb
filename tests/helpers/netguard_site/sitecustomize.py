"""Installs the test network guard (``tests/helpers/netguard.py``) in every Python process a
test starts: the test session puts this directory on ``PYTHONPATH`` and names the log in
``DOORBELL_NETGUARD_LOG``. Loaded by path, so it works in interpreters that cannot import
``tests`` (a bare Lambda venv), and with nothing but what every interpreter has loaded."""

import os

if os.environ.get("DOORBELL_NETGUARD_LOG"):
    import sys
    import types
    from importlib.machinery import SourceFileLoader

    _here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    _loader = SourceFileLoader("_doorbell_netguard", os.path.join(_here, "netguard.py"))
    _module = types.ModuleType(_loader.name)
    _module.__file__, _module.__loader__ = _loader.path, _loader
    sys.modules[_loader.name] = _module
    _loader.exec_module(_module)
    _module.install_from_env()
