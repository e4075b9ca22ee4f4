"""Starts the wire fake of Hopsworks (../hopsworks_wire.py) in every Python process that has this folder on
PYTHONPATH and HOPSWORKS_WIRE_STATE set: the runner `sml-run`, its papermill stage kernels, a check's child
process. Code under test needs no change: it logs in with the real SDK, whose network seams the fake answers.

    PYTHONPATH=tests/helpers/wire_autostart HOPSWORKS_WIRE_STATE=/tmp/cluster sml-run daily

The module is loaded from its file, not by putting tests/helpers on sys.path: that folder also holds
`voila.py` and `runs.py`, which would shadow the real packages in a kernel.
"""

import os

if os.environ.get("HOPSWORKS_WIRE_STATE"):
    import importlib.util
    import sys

    _path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "hopsworks_wire.py")
    _spec = importlib.util.spec_from_file_location("hopsworks_wire", _path)
    _module = importlib.util.module_from_spec(_spec)
    sys.modules["hopsworks_wire"] = _module
    _spec.loader.exec_module(_module)
    _module.FakeHopsworks.from_env().start()
