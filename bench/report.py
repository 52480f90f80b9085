"""The run's figures for a reader (a table on stdout), for later comparison (a JSON file named by
the time of the run) and at a glance (the latency distribution as a small SVG, drawn by hand:
no plotting library is needed for one line and two markers)."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.floor import IDLE_S


def progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    text = f"{value:.0f}" if abs(value) >= 100 else f"{value:.2f}" if abs(value) < 10 \
        else f"{value:.1f}"
    return f"{text} {unit}".rstrip()


def ratio(mine: float | None, other: float | None) -> float | None:
    return None if mine is None or not other else mine / other


def p50_p99(summary: dict[str, Any], unit: str = "ms") -> str:
    return f"{number(summary['p50'])} / {number(summary['p99'], unit)}"


def verdict(ok: bool | None) -> str:
    return "-" if ok is None else "met" if ok else "NOT MET"


def table(r: dict[str, Any]) -> str:
    floor, e2e, load = r["floor"], r["e2e"], r["throughput"]
    idle = floor["after_idle_added_ms"]
    e2e_ratio = ratio(r["e2e_p50_ms"], r["floor_ms"])
    load_ratio = ratio(r["throughput_orders_s"], r["ceiling_orders_s"])
    warm = r["workshop"]
    traced = r["traces"]["added_ms_per_order"]
    rows: list[tuple[str, str, str, str, str]] = [
        ("floor: UpdateItem, 1 client (p50 / p99)", p50_p99(floor["update_item_ms"]), "", "", ""),
        (f"floor: UpdateItem, {r['sizes']['floor_clients']} clients",
         number(floor["update_item_per_s"], "/s"),
         "before / after the load: " + " / ".join(
             number(x, "/s") for x in floor["update_item_per_s_before_after"]), "", ""),
        ("floor: PutEvents, no rule matching (p50 / p99)", p50_p99(floor["put_events_ms"]), "",
         "", ""),
        ("floor: critical path (3 updates + 2 PutEvents)", number(r["floor_ms"], "ms"), "", "",
         ""),
        ("end to end, one at a time: p50", number(r["e2e_p50_ms"], "ms"),
         f"floor {number(r['floor_ms'], 'ms')}", number(e2e_ratio, "x"),
         f"<= 1.5x: {verdict(None if e2e_ratio is None else e2e_ratio <= 1.5)}"),
        ("end to end, one at a time: p99", number(r["e2e_p99_ms"], "ms"),
         f"floor {number(r['floor_ms'], 'ms')}",
         number(ratio(r["e2e_p99_ms"], r["floor_ms"]), "x"), ""),
        (f"throughput, {r['sizes']['users']} in flight", number(r["throughput_orders_s"], "/s"),
         f"ceiling {number(r['ceiling_orders_s'], '/s')}", number(load_ratio),
         f">= 0.5: {verdict(None if load_ratio is None else load_ratio >= 0.5)}"),
        ("end to end under that load (p50 / p99)", p50_p99(load["e2e_ms"]), "", "", ""),
        ("under load: PutEvents accepted to target START (p50 / p99)",
         p50_p99(load["hops_ms"]["put_events_to_start"]), "", "", ""),
        ("under load: warm duration p50, slowest function",
         number(max((v for v in load["warm_p50_ms"].values() if v is not None), default=None),
                "ms"), f"{load['cold_starts']} cold start(s) in the window", "", ""),
        ("warm duration, five services together", number(warm["ours_ms"], "ms"),
         f"workshop {number(warm['workshop_ms'], 'ms')}", number(r["warm_ratio"]),
         f"<= 0.33: {verdict(None if r['warm_ratio'] is None else r['warm_ratio'] <= 1 / 3)}"),
        ("orders lost", str(r["orders_lost"]), f"of {r['orders']['made']} made", "",
         f"0: {verdict(r['orders_lost'] == 0)}"),
        ("orders the API did not accept", str(r["orders"]["not_accepted"]), "", "", ""),
        ("hop: API Gateway, request in to START (p50 / p99)",
         p50_p99(r["hops"]["api_gateway"]), "", "", ""),
        ("hop: PutEvents accepted to target START (p50 / p99)",
         p50_p99(r["hops"]["put_events_to_start"]), "", "", ""),
        ("traces: added to one order's writes (spans; values indexed behind)",
         number(traced, "ms"),
         f"behind the work: {number(r['traces']['values_indexed_behind_ms_per_order'], 'ms')}",
         "", f"<= 1 ms: {verdict(None if traced is None else traced <= 1)}"),
        ("floor aside: 3 UpdateItems to one item at once, each (p50)",
         number(floor["update_item_fan_out_ms"]["p50"], "ms"),
         f"+{number(floor['fan_out_queueing_ms'], 'ms')} over one alone", "", ""),
        (f"floor aside: after {IDLE_S * 1000:g} ms idle, UpdateItem / PutEvents (p50)",
         f"{number(floor['update_item_after_idle_ms']['p50'])} / "
         f"{number(floor['put_events_after_idle_ms']['p50'], 'ms')}",
         f"+{number(idle['update_item'])} / +{number(idle['put_events'], 'ms')} over back to "
         "back", "", ""),
        ("UpdateItem through the endpoint (up --trace-dynamodb), p50",
         number(floor["update_item_through_endpoint_ms"]["p50"], "ms"),
         f"+{number(floor['pass_through_added_ms'], 'ms')} a call over direct", "", ""),
    ]
    for segment, ms in e2e["critical_path_p50_ms"].items():
        rows.append((f"critical path p50: {segment}", number(ms, "ms"), "", "", ""))
    split = e2e["split"]
    over = split["function_runs_over_floor_ms"]
    rows += [
        ("one order, p50: in the sandbox's hops", number(split["sandbox_hops_ms"], "ms"), "",
         "", ""),
        ("one order, p50: in the functions' runs (x: against the floor)",
         number(split["function_runs_ms"], "ms"), f"{number(over, 'ms')} over the floor",
         number(ratio(split["function_runs_ms"], r["floor_ms"]), "x"),
         f"<= 5 ms over: {verdict(None if over is None else over <= 5)}"),
    ]
    for label, figures in r["functions"].items():
        if label.startswith("Workshop"):
            continue
        compared = warm["services"].get(label, {})
        burst = ratio(figures["init_under_load_ms"]["p50"], figures["init_ms"]["p50"])
        rows.append((f"{label}: warm p50 / p99; cold init, alone / under load",
                     f"{p50_p99(figures['warm_ms'])}; {number(figures['init_ms']['p50'])} / "
                     f"{number(figures['init_under_load_ms']['p50'], 'ms')}",
                     f"workshop {number(compared.get('workshop_ms'), 'ms')}",
                     number(compared.get("ratio")),
                     f"init under load <= 3x alone ({number(burst, 'x')}): "
                     f"{verdict(None if burst is None else burst <= 3)}"))
    memory = r["memory_mb"]
    rows.append(("peak memory: sandbox / DynamoDB Local",
                 f"{number(memory.get('sandbox'))} / {number(memory.get('dynamodb-local'), 'MB')}",
                 "", "", ""))
    for label, workers in sorted(memory["workers"].items()):
        rows.append((f"peak memory: {label} worker", number(workers["peak_mb"], "MB"),
                     f"{workers['count']} worker(s)", "", ""))
    for role, used in load["cores_used"].items():
        rows.append((f"cores busy in the throughput window: {role}", number(used),
                     f"{number(load['cpu_ms_per_order'].get(role), 'ms')} CPU per order", "", ""))
    headers = ("figure", "value", "beside", "ratio", "goal")
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(4)]
    lines = [f"bench {r['run']}: {r['machine']['cpus']} CPUs, load average "
             f"{' '.join(str(x) for x in r['machine']['load_average'])}", ""]
    for row in [headers, *rows]:
        cells = [row[i].ljust(widths[i]) if i < 4 else row[i] for i in range(5)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def svg(samples_ms: list[float], floor_ms: float | None) -> str:
    """The cumulative distribution of end-to-end latency, with the floor and twice the floor."""
    width, height, margin = 640, 360, 50
    ordered = sorted(samples_ms)
    top = max([*ordered[-1:], 2 * (floor_ms or 0)]) * 1.05 or 1.0

    def x(ms: float) -> float:
        return margin + (width - 2 * margin) * ms / top

    def y(share: float) -> float:
        return height - margin - (height - 2 * margin) * share

    points = " ".join(f"{x(ms):.1f},{y((i + 1) / len(ordered)):.1f}"
                      for i, ms in enumerate(ordered))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{margin}" y="20">End-to-end latency, one order at a time '
        f'({len(ordered)} orders): share of orders complete by</text>',
        f'<line x1="{margin}" y1="{y(0)}" x2="{width - margin}" y2="{y(0)}" stroke="black"/>',
        f'<line x1="{margin}" y1="{y(0)}" x2="{margin}" y2="{y(1)}" stroke="black"/>',
    ]
    for share in (0, 0.25, 0.5, 0.75, 1):
        parts.append(f'<text x="{margin - 6}" y="{y(share) + 4:.1f}" text-anchor="end">'
                     f'{share:g}</text>')
    step = max(1, round(top / 8 / 5) * 5)
    for ms in range(0, int(top) + 1, step):
        parts.append(f'<text x="{x(ms):.1f}" y="{y(0) + 16}" text-anchor="middle">{ms}</text>')
    parts.append(f'<text x="{width - margin}" y="{height - 8}" text-anchor="end">ms</text>')
    if floor_ms:
        for ms, name in ((floor_ms, "floor"), (2 * floor_ms, "2x floor")):
            parts.append(f'<line x1="{x(ms):.1f}" y1="{y(0)}" x2="{x(ms):.1f}" y2="{y(1)}" '
                         'stroke="grey" stroke-dasharray="4"/>')
            parts.append(f'<text x="{x(ms) + 4:.1f}" y="{y(1) + 12}">{name}</text>')
    if points:
        parts.append(f'<polyline points="{points}" fill="none" stroke="steelblue" '
                     'stroke-width="2"/>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def write_json(figures: dict[str, Any], directory: Path, prefix: str = "") -> Path:
    """`<prefix><time>.json` in `directory`, named by the local time of the run."""
    directory.mkdir(parents=True, exist_ok=True)
    json_file = directory / f"{prefix}{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    json_file.write_text(json.dumps(figures, indent=2) + "\n")
    return json_file


def write(figures: dict[str, Any], directory: Path) -> list[Path]:
    """`<time>.json` and `<time>.svg` in `directory`."""
    json_file = write_json(figures, directory)
    svg_file = json_file.with_suffix(".svg")
    svg_file.write_text(svg(figures["e2e_samples_ms"], figures["floor_ms"]))
    return [json_file, svg_file]
