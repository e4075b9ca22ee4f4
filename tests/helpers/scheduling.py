"""The order in which `pytest -n 2 --dist loadscope` (make pytest) hands out its scopes (a module, or a class in one).

xdist hands scopes out in collection order, which `--random-order` shuffles: when a scope that runs for
minutes comes last, one worker runs it alone while the others wait, and the suite takes minutes longer.
Handing the slow scopes out first, slowest first, lets the short ones fill the gaps at the end
(longest-first scheduling). The tests inside every scope, and the other scopes, keep their random order."""

from __future__ import annotations

from xdist.scheduler import LoadScopeScheduling

# Measured with `--durations` (CI, 2 and 3 workers, 2026-11-30), slowest first: each of these runs for minutes.
# test_serving.py::TestOwnServers left the list when its two servers became one (under a minute now).
SLOW_SCOPES = (
    "tests/test_runs.py",
    "tests/test_serving.py",
    "tests/test_pipelines.py",
    "tests/test_hopsworks_processes.py",  # one `sml-run run` of 8 stage kernels on the wire fake: about a minute
    "tests/test_browser_predictor.py",
    "tests/test_browser.py",
    "tests/test_served_under_prefix.py",
    "tests/test_drift.py",
    "tests/test_check.py",
    "tests/test_clean.py",  # a check killed part-way, then a run on a cleaned store beside one on a fresh store
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
