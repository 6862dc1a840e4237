"""`make bench`: the system beside a bare baseline, on loopback (docs/performance.md)."""
