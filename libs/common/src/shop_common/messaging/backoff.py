"""Bounded exponential backoff with jitter, for reconnect loops."""

from __future__ import annotations

import random


class Backoff:
    """Delays `initial * factor**n`, capped at `maximum`, with "equal jitter".

    Half of each delay is fixed and half random, so many workers that lost the broker at
    the same moment do not come back in lockstep, and no delay collapses to zero.
    """

    def __init__(self, initial: float = 0.2, maximum: float = 30.0, factor: float = 2.0) -> None:
        if not 0 < initial <= maximum or factor < 1:
            raise ValueError("need 0 < initial <= maximum and factor >= 1")
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self._failures = 0

    def next_delay(self) -> float:
        ceiling = min(self.maximum, self.initial * self.factor**self._failures)
        if ceiling < self.maximum:  # stop growing the exponent once capped (no float overflow)
            self._failures += 1
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def reset(self) -> None:
        self._failures = 0
