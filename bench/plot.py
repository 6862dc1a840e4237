"""One picture: GET latency (p50, p99) against offered load, ours and the baseline.

Needs matplotlib, which the project does not lock; without it the runner skips the picture.
Redraw from a results file:
`uv run --with matplotlib python -m bench.plot bench/results/latest.json`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def draw(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    curve = results["curve"]
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    styles = {"ours": "tab:red", "baseline": "tab:blue"}
    for name, color in styles.items():
        points = curve[name]
        offered = [p["offered_rps"] for p in points]
        for key, marker, style in (("p50_ms", "o", "-"), ("p99_ms", "s", "--")):
            values = [p[key] for p in points]
            ax.plot(offered, values, style, color=color, label=f"{name} {key[:3]}")
            # Filled: the rate was held; hollow: the server fell behind (see the table).
            for x, y, p in zip(offered, values, points, strict=True):
                face = color if p["held_rate"] and not p["error_count"] else "white"
                ax.plot([x], [y], marker, color=color, markerfacecolor=face)
    ax.axhline(10, color="grey", linewidth=0.8, linestyle=":", label="target p99 at 50%: 10 ms")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("offered load, requests/s (constant rate; hollow: rate not held; log)")
    ax.set_ylabel("latency, ms (log)")
    meta = results["meta"]
    ax.set_title(
        f"GET /v1/products/{{id}}: latency against offered load\n"
        f"{meta['cpus']} cores, commit {meta['commit'][:10]}, {meta['date'][:10]}",
        fontsize=10,
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    source = Path(sys.argv[1] if len(sys.argv) > 1 else "bench/results/latest.json")
    results = json.loads(source.read_text())
    target = source.with_name(f"{source.stem}-latency-vs-load.png")
    draw(results, target)
    sys.stdout.write(f"wrote {target}\n")


if __name__ == "__main__":
    main()
