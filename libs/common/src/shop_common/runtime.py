"""Process-wide runtime settings both kinds of process apply once at start-up."""

from __future__ import annotations

import gc

__all__ = ["freeze_startup_objects"]

# Young-generation collections run every 700 allocations by default: a request or an event
# allocates thousands (ORM rows, pydantic models, headers), so most requests paid for several.
_GC_THRESHOLDS = (50_000, 20, 20)


def freeze_startup_objects() -> None:
    """Collect once, then move everything alive now (modules, the app) out of the
    collector's view, and collect the young generation less often. Frozen objects are
    never freed; they would have lived as long as the process anyway."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*_GC_THRESHOLDS)
