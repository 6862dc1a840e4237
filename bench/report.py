"""Turns a run's results into the table (terminal and markdown), with issue 9's targets."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

OUR_PROCESSES = ("catalog-api", "catalog-worker", "orders-api", "orders-worker")
SHARED = ("postgres (bench db backends)", "postgres (all processes)", "rabbitmq")


@dataclass(frozen=True)
class Row:
    measure: str
    ours: str
    baseline: str = ""
    ratio: str = ""
    target: str = ""
    verdict: str = ""


def _ms(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value:.1f} ms" if value < 100 else f"{value:,.0f} ms"


def _rps(value: float) -> str:
    return f"{value:,.0f} req/s" if value >= 100 else f"{value:,.1f} req/s"


def _verdict(ok: bool | None, *, valid: bool = True) -> str:
    """PASS/FAIL; INVALID for a pass that rests on a run with errors or a rate not held.

    A latency that already fails is a FAIL even from a flawed run: errors and dropped slots
    only ever make latency look better than it is.
    """
    if ok is None:
        return "n/a" if valid else "INVALID"
    if not ok:
        return "FAIL"
    return "PASS" if valid else "INVALID"


NOISY_SHARE = 0.2  # of the machine's cores, taken by other work during a phase


def _noisy(results: dict[str, Any], phase: str) -> str:
    """Marks a verdict whose phase shared the machine with much other work."""
    cores = results.get("other_work_cores", {}).get(phase)
    if cores is None or cores <= NOISY_SHARE * results["meta"]["cpus"]:
        return ""
    return " (noisy)"


def _valid(*results: dict[str, Any] | None) -> bool:
    return all(r is None or (not r["error_count"] and r["held_rate"]) for r in results)


def _saturation(get: dict[str, Any], name: str) -> str:
    median, runs = get[name]["median"], get[name]["rounds"]
    kinds: dict[str, int] = {}
    for run in runs:
        for kind, n in run["errors"].items():
            kinds[kind] = kinds.get(kind, 0) + n
    note = f" (errors: {_kinds(kinds)})" if kinds else ""
    return f"{_rps(median['rps'])}, p50 {_ms(median['p50_ms'])}, p99 {_ms(median['p99_ms'])}{note}"


def _load(result: dict[str, Any]) -> str:
    """`p50 / p99 at N req/s`, with a warning when the run had errors or missed its rate."""
    text = f"p50 {_ms(result['p50_ms'])}, p99 {_ms(result['p99_ms'])} at {_rps(result['rps'])}"
    warnings = []
    if result["error_count"]:
        warnings.append(f"errors: {_kinds(result['errors'])}")
    if not result["held_rate"]:
        warnings.append(
            f"offered {result['offered_rps']:,.0f}/s, rate not held, {result['late']} slots late"
        )
    return text + (f" ({'; '.join(warnings)})" if warnings else "")


def _rounds(side: dict[str, Any]) -> str:
    """Median p50/p99 of paced rounds, and the spread of p99 (it is the noisy one)."""
    median, runs = side["median"], side["rounds"]
    p99s = sorted(r["p99_ms"] for r in runs)
    text = (
        f"p50 {_ms(median['p50_ms'])}, p99 {_ms(median['p99_ms'])} "
        f"(rounds' p99 {_ms(p99s[0])}..{_ms(p99s[-1])})"
    )
    warnings = []
    errors = sum(r["error_count"] for r in runs)
    if errors:
        warnings.append(f"{errors} errors")
    short = [r for r in runs if not r["held_rate"]]
    if short:
        warnings.append(f"rate not held in {len(short)} of {len(runs)}")
    return text + (f"; {'; '.join(warnings)}" if warnings else "")


def _kinds(errors: dict[str, int]) -> str:
    """wrk's error kinds: `status` is HTTP >= 400, the others are socket-level."""
    return ", ".join(f"{n} {kind}" for kind, n in sorted(errors.items()))


def _point(points: list[dict[str, Any]], pct: int) -> dict[str, Any] | None:
    return next((p for p in points if p["pct"] == pct), None)


def rows(results: dict[str, Any]) -> list[Row]:
    out: list[Row] = []
    get = results.get("get")
    base_rps = get["baseline"]["median"]["rps"] if get else None
    if get:
        ratio = get["ours"]["median"]["rps"] / get["baseline"]["median"]["rps"]
        out.append(
            Row(
                f"GET /v1/products/{{id}}, saturation (median of {len(get['ours']['rounds'])})",
                _saturation(get, "ours"),
                _saturation(get, "baseline"),
                f"{ratio:.2f}",
                ">= 0.75",
                # Errors on either side move the ratio either way: no verdict from such a run.
                (
                    _verdict(ratio >= 0.75)
                    if _valid(*get["ours"]["rounds"], *get["baseline"]["rounds"])
                    else "INVALID"
                )
                + _noisy(results, "get"),
            )
        )
    half = results.get("get_half")
    if half:
        ours, base = half["ours"], half["baseline"]
        out.append(
            Row(
                f"GET at 50% of our max ({half['rate']:,.0f} req/s, wrk paced), "
                f"median of {len(ours['rounds'])}; baseline at the same rate",
                _rounds(ours),
                _rounds(base),
                "",
                "p99 <= 10 ms",
                _verdict(ours["median"]["p99_ms"] <= 10, valid=_valid(*ours["rounds"]))
                + _noisy(results, "get_half"),
            )
        )
    curve = results.get("curve")
    if curve and not half:  # results from before the get_half phase existed
        ours50 = _point(curve["ours"], 50)
        base50 = _point(curve["baseline"], 50)
        where = "baseline at 50% of its own"
        if ours50:
            out.append(
                Row(
                    f"GET at 50% of our max, constant rate (wrk paced); {where}",
                    _load(ours50),
                    _load(base50) if base50 else "",
                    "",
                    "p99 <= 10 ms",
                    _verdict(ours50["p99_ms"] <= 10, valid=_valid(ours50)),
                )
            )
    post_sat, post_half = results.get("post_saturation"), results.get("post_half")
    if post_sat:
        load = post_sat["load"]
        ratio = f"{load['rps'] / base_rps:.3f} x base GET" if base_rps else ""
        out.append(
            Row(
                "POST /v1/orders, saturation",
                _load(load),
                "",
                ratio,
                "",
                "" if _valid(load) else "INVALID",
            )
        )
    if post_half:
        out.append(
            Row(
                "POST /v1/orders at 50% of its max",
                _load(post_half["load"]),
                "",
                "",
                "p99 <= 50 ms",
                _verdict(post_half["load"]["p99_ms"] <= 50, valid=_valid(post_half["load"]))
                + _noisy(results, "post_half"),
            )
        )
    if post_sat:
        s = post_sat["saga"]
        ratio_value = s["confirmed_per_s"] / base_rps if base_rps else None
        out.append(
            Row(
                "placed and CONFIRMED per second, saturation",
                f"{s['confirmed_per_s']:,.1f}/s ({s['confirmed']} of {s['placed']} orders)",
                "",
                f"{ratio_value:.3f} x base GET" if ratio_value is not None else "",
                ">= 0.04 x base GET",
                # Counted from the database: failed POSTs do not inflate it, a saga that did
                # not drain would.
                _verdict(
                    ratio_value >= 0.04 if ratio_value is not None else None,
                    valid=not post_sat["still_pending"],
                )
                + _noisy(results, "post_saturation"),
            )
        )
        out.append(
            Row(
                "saga placed -> CONFIRMED, saturation",
                f"p50 {_ms(s['p50_ms'])}, p99 {_ms(s['p99_ms'])}",
            )
        )
    if post_half:
        s = post_half["saga"]
        out.append(
            Row(
                "saga placed -> CONFIRMED at 50% load",
                f"p50 {_ms(s['p50_ms'])}, p99 {_ms(s['p99_ms'])} ({s['confirmed']} orders)",
                "",
                "",
                "p99 <= 100 ms",
                _verdict(
                    s["p99_ms"] <= 100,
                    valid=_valid(post_half["load"]) and not post_half["still_pending"],
                )
                + _noisy(results, "post_half"),
            )
        )
    rel = results.get("relay")
    if rel:
        for run in rel["runs"]:
            late = (
                f" (timed out: {run['drained']:,} of {run['rows']:,})" if run["timed_out"] else ""
            )
            out.append(
                Row(
                    f"relay: drain {run['rows']:,} outbox rows",
                    f"{run['events_per_s']:,.0f} events/s, {run['seconds']:.1f} s{late}",
                    "",
                    "",
                    ">= 2000 events/s",
                    _verdict(run["events_per_s"] >= 2000 and not run["timed_out"])
                    + _noisy(results, "relay"),
                )
            )
        per_event = _relay_cpu(rel["runs"][-1])
        if per_event:
            out.append(Row("  relay CPU per event (largest backlog)", per_event))
        if rel["time_ratio"] is not None:
            bound = ">" if rel["ratio_is_lower_bound"] else ""
            limit = 10.5 * rel["size_ratio"] / 10
            out.append(
                Row(
                    f"relay: time ratio {rel['size_ratio']:.0f}x rows",
                    f"{bound}{rel['time_ratio']:.2f}",
                    "",
                    "",
                    f"<= {limit:.1f}",
                    _verdict(not rel["ratio_is_lower_bound"] and rel["time_ratio"] <= limit)
                    + _noisy(results, "relay"),
                )
            )
    if post_sat and post_sat["saga"]["confirmed"]:
        per_order = cpu_per_order(post_sat)
        total = sum(per_order[p] for p in OUR_PROCESSES if p in per_order)
        before = results.get("before_cpu_ms_per_order")
        out.append(
            Row(
                "CPU per confirmed order, our 4 processes (saturation)",
                f"{total:.1f} ms",
                "",
                "",
                f"<= {before / 2:.1f} ms (half of before)" if before else "report, then halve",
                (_verdict(total <= before / 2) + _noisy(results, "post_saturation"))
                if before
                else "",
            )
        )
        shared = ", ".join(f"{k} {per_order[k]:.1f} ms" for k in SHARED if k in per_order)
        out.append(Row("  plus shared services", shared))
    return out


def _relay_cpu(run: dict[str, Any]) -> str:
    if not run["drained"]:
        return ""
    seconds = run["cpu"]["seconds"]
    parts = [
        f"{name} {1e6 * seconds[name] / run['drained']:.0f} us"
        for name in ("orders-worker", "postgres (bench db backends)", "rabbitmq")
        if name in seconds
    ]
    return ", ".join(parts)


def cpu_per_order(phase: dict[str, Any]) -> dict[str, float]:
    confirmed = phase["saga"]["confirmed"]
    return {k: 1000 * v / confirmed for k, v in phase["cpu"]["seconds"].items()}


def cpu_rows(results: dict[str, Any]) -> list[tuple[str, ...]]:
    """Per process: CPU-ms per confirmed order and share of a core, at saturation and at 50%."""
    phases = [(n, results[n]) for n in ("post_saturation", "post_half") if results.get(n)]
    phases = [(n, p) for n, p in phases if p["saga"]["confirmed"]]
    if not phases:
        return []
    measured = phases[0][1]["cpu"]["seconds"]
    order = [*OUR_PROCESSES, *SHARED, "load generator", "bench runner"]
    names = [n for n in order if n in measured] + [n for n in measured if n not in order]
    names.append("other work on the machine")
    table = []
    for name in names:
        cells = [name]
        for _, phase in phases:
            cpu = phase["cpu"]
            seconds = cpu["other_s"] if name.startswith("other work") else cpu["seconds"][name]
            per_order = 1000 * seconds / phase["saga"]["confirmed"]
            cells.append(f"{per_order:.1f} ms, {100 * seconds / cpu['wall_s']:.0f}% of a core")
        table.append(tuple(cells))
    return table


def _widths(table: list[tuple[str, ...]]) -> list[int]:
    return [max(len(r[i]) for r in table) for i in range(len(table[0]))]


def text_table(results: dict[str, Any]) -> str:
    header = ("measure", "ours", "baseline", "ratio", "target", "verdict")
    table = [header] + [tuple(vars(r).values()) for r in rows(results)]
    widths = _widths(table)
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    cpu = cpu_rows(results)
    if cpu:
        heads = ("process", "POST saturation", "POST at 50%")[: len(cpu[0])]
        cpu_table = [heads, *cpu]
        w = _widths(cpu_table)
        lines += ["", "CPU per confirmed order, and busy share of one core during the phase:"]
        lines += [
            "  ".join(c.ljust(x) for c, x in zip(r, w, strict=True)).rstrip() for r in cpu_table
        ]
    noise = _noise(results)
    if noise:
        lines += ["", noise]
    return "\n".join(lines)


def _noise(results: dict[str, Any]) -> str:
    other = results.get("other_work_cores")
    if not other:
        return ""
    cpus = results["meta"]["cpus"]
    order = ["get", "get_half", "curve", "post_saturation", "post_half", "relay"]
    names = sorted(other, key=lambda n: order.index(n) if n in order else len(order))
    parts = ", ".join(f"{name} {other[name]:.2f}" for name in names)
    return f"Other work on the machine during each phase, in cores of {cpus}: {parts}."


def _md(table: list[tuple[str, ...]]) -> list[str]:
    def cell(c: str) -> str:
        return c.replace("|", "\\|")

    lines = ["| " + " | ".join(cell(c) for c in table[0]) + " |"]
    lines.append("|" + "---|" * len(table[0]))
    lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in table[1:]]
    return lines


def markdown(results: dict[str, Any], heading: str, picture: str | None) -> str:
    meta = results["meta"]
    lines = [
        f"## {heading}",
        "",
        f"- date: {meta['date']}; commit `{meta['commit']}`"
        + (" (work tree had uncommitted changes)" if meta["dirty"] else ""),
        f"- machine: {meta['cpus']} cores ({meta['cpu_model']}), {meta['kernel']}, "
        f"PostgreSQL {meta['postgres']}, RabbitMQ {meta['rabbitmq']}, Python {meta['python']}",
        f"- command: `{meta['command']}` ({meta['plan']}); load average at start "
        f"{meta['loadavg_start']}",
        f"- load: wrk {meta['wrk']}, {meta['threads']} threads, {meta['connections']} connections",
        "",
    ]
    table = [("measure", "ours", "baseline", "ratio", "target", "verdict")]
    table += [tuple(vars(r).values()) for r in rows(results)]
    lines += _md(table)
    cpu = cpu_rows(results)
    if cpu:
        heads = ("process", "POST saturation", "POST at 50%")[: len(cpu[0])]
        lines += ["", "CPU per confirmed order, and busy share of one core during the phase:", ""]
        lines += _md([heads, *cpu])
    curve = results.get("curve")
    if curve:
        lines += ["", "GET latency against offered load (constant rate):", ""]
        table = [("offered (% of own max)", "ours", "baseline")]
        for point in curve["ours"]:
            base = _point(curve["baseline"], point["pct"])
            table.append((f"{point['pct']}%", _load(point), _load(base) if base else ""))
        lines += _md(table)
    noise = _noise(results)
    if noise:
        lines += ["", noise]
    if picture:
        lines += ["", f"![GET latency against offered load]({picture})"]
    if results.get("errors"):
        lines += ["", "Phases that failed: " + "; ".join(results["errors"])]
    return "\n".join(lines) + "\n"
