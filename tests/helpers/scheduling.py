"""The order in which `pytest -n 2 --dist loadscope` (make pytest) hands out its scopes (a module, or a class in one).

xdist hands scopes out in collection order, which `--random-order` shuffles: when a scope that runs for
minutes comes last, one worker runs it alone while the others wait, and the suite takes minutes longer.
Handing the slow scopes out first, slowest first, lets the short ones fill the gaps at the end
(longest-first scheduling). The tests inside every scope, and the other scopes, keep their random order."""

from __future__ import annotations

from xdist.scheduler import LoadScopeScheduling

# Measured with `--durations=0` (2 workers, 2026-12-07: 894 worker-seconds in all), slowest first, in seconds.
SLOW_SCOPES = (
    "tests/test_serving.py",  # 150 (220 with its classes): the server's gate and culler, probed as issue 26 did (plain GETs, 100 missing
                              # pages, 15 pages in a row, visits over the cap), each waiting for kernels to go
    "tests/test_browser_predictor.py",  # 95
    "tests/test_serving.py::TestOnePerson",  # 55: its own server (a class is a scope of its own)
    "tests/test_runs.py",  # 74
    "tests/test_pipelines.py",  # 62
    "tests/test_browser.py",  # 58
    "tests/test_clean.py",  # 45: a check killed part-way, then a run on a cleaned store beside one on a fresh store
    "tests/test_drift.py",  # 43
    "tests/test_served_under_prefix.py",  # 41
    "tests/test_hopsworks_processes.py",  # 34-55: `sml-run run` of 8 stage kernels on the wire fake
    "tests/test_apps.py",  # 25
    "tests/test_monitoring_state.py",  # 21
    "tests/test_runner.py",  # 20
    "tests/test_check.py",  # 19
)


class SlowScopesFirst(LoadScopeScheduling):
    "xdist's loadscope scheduling, with the scopes of `SLOW_SCOPES` moved to the front of the queue in that order."

    def _assign_work_unit(self, node) -> None:
        "Before the first scope goes out, move the slow scopes to the front of the queue."
        if not getattr(self, "_slow_first", False):
            for scope in reversed(SLOW_SCOPES):
                if scope in self.workqueue:
                    self.workqueue.move_to_end(scope, last=False)
            self._slow_first = True
        super()._assign_work_unit(node)
