"""Start-up objects are frozen out of the collector and young collections are rarer."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = (
    "import gc, json\n"
    "from shop_common.runtime import freeze_startup_objects\n"
    "before = gc.get_threshold()\n"
    "freeze_startup_objects()\n"
    "print(json.dumps([before, gc.get_threshold(), gc.get_freeze_count()]))\n"
)


def test_freezing_moves_start_up_objects_out_and_raises_the_threshold() -> None:
    # In a process of its own: freezing is for the life of the process.
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    before, after, frozen = json.loads(out)
    assert before[0] == 700  # CPython's default, which made most requests pay for collections
    assert after[0] >= 10_000
    assert frozen > 1_000  # the modules and everything they built at import
