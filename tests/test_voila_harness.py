"""The tests' Voila harness (tests/helpers/voila.py) watches a server from outside: this process stands in
for a server, its children for kernels."""

from __future__ import annotations

import psutil
import pytest
from helpers import voila


def test_the_watcher_counts_kernels_memory_and_cpu_of_a_process_tree():
    this = psutil.Process()
    assert voila.kernel_count(this) == len(this.children())
    assert voila.resident_memory(this) >= this.memory_info().rss > 0
    assert voila.cpu_seconds(this) > 0


def test_a_server_is_calm_only_with_the_kernels_asked_for_steady_memory_and_idle_cpu():
    assert voila.calm((2, 100, 1.0), (2, 101, 1.1), 2)
    assert not voila.calm((2, 100, 1.0), (2, 150, 1.1), 2)  # memory still growing: imports
    assert not voila.calm((2, 100, 1.0), (2, 100, 2.0), 2)  # a kernel still working
    assert not voila.calm((3, 100, 1.0), (3, 100, 1.0), 2)  # one kernel too many


def test_settle_returns_once_the_process_is_quiet():
    this = psutil.Process()
    kernels, memory = voila.settle(this, kernels=len(this.children()), timeout=20, quiet=1)
    assert kernels == len(this.children()) and memory > 0


def test_a_url_no_server_of_ours_answers_says_how_to_start_one():
    with pytest.raises(LookupError, match="start it with running_voila"):
        voila.voila_process("http://127.0.0.1:1/ml")
