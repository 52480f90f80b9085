"""`python -m bench`: one run of the bench, start to end, then the table and the JSON file.

The phases, in order, on one sandbox running the app beside its workshop-style twin:
1. orders one at a time, ours and the twin's taking turns, and between two turns the raw calls
   of one order's critical path (the floor), so the floor and the orders see the same load:
   end-to-end latency, the critical path, each function's warm duration with nothing competing;
2. `--users` users in a closed loop on our stack: a warm-up, then the measured window, with the
   database's ceiling (raw updates from `--floor-clients` clients at once) just before and after;
3. every order waited for, the tables read back: an order without its five stamps is lost;
4. each process's peak memory, then Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import analysis, deployed, floor, history, report, trace_cost
from bench.assembly import TWIN_STAGE, build
from bench.orders import History, Order, closed_loop, lost_orders, one_at_a_time, wait_all
from bench.sandbox_process import ROOT, SandboxProcess, cpu_seconds, proc_status_kb
from sandbox.assembly import read_assembly

DEFAULT_ASSEMBLY = ROOT / "cdk" / "cdk.out"
DEFAULT_RESULTS = ROOT / "bench" / "results"
WARM_UP_ORDERS = 3  # per stage, before anything is measured: the workers' cold starts
RETRY_SCALE = 0.01  # a failed invocation is retried within a second, not minutes: late is not lost
DRAIN_S = 60.0


def at_least(kind: type, least: float, exclusive: bool = True) -> Any:
    def parse(text: str) -> Any:
        value = kind(text)
        if value < least or (exclusive and value == least):
            raise argparse.ArgumentTypeError(
                f"{text} must be {'above' if exclusive else 'at least'} {least}")
        return value
    return parse


def positive(kind: type) -> Any:
    return at_least(kind, 0)


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--assembly", type=Path, default=DEFAULT_ASSEMBLY,
                     help="the synthesized app (default: %(default)s; make synth writes it)")
    cli.add_argument("--results", type=Path, default=DEFAULT_RESULTS,
                     help="where the JSON (and SVG) of the run go (default: %(default)s)")
    cli.add_argument("--orders", type=positive(int), default=200,
                     help="orders one at a time, on each of ours and the workshop style's")
    cli.add_argument("--users", type=positive(int), default=16,
                     help="orders in flight at once in the throughput phase")
    cli.add_argument("--seconds", type=positive(float), default=30.0,
                     help="the throughput phase's measured window")
    cli.add_argument("--warm-up", type=at_least(float, 0, exclusive=False), default=10.0,
                     help="seconds of load before the window, not counted")
    cli.add_argument("--floor-clients", type=positive(int), default=8,
                     help="clients for the raw DynamoDB throughput")
    cli.add_argument("--floor-seconds", type=positive(float), default=5.0,
                     help="seconds of raw DynamoDB throughput")
    cli.add_argument("--history", type=at_least(int, history.TEMPLATE_ORDERS), metavar="N",
                     help="instead of the phases above: does reading the history cost the same "
                     f"at N orders as at {history.TEMPLATE_ORDERS}? (N above "
                     f"{history.TEMPLATE_ORDERS}: the first {history.TEMPLATE_ORDERS} are real "
                     "orders, measured, then copied up to N; see bench/history.py)")
    aws = cli.add_argument_group(
        "a deployed stack", "instead of the sandbox: --orders one at a time, then --users for "
        "--seconds, on AWS with your credentials (see bench/deployed.py)")
    aws.add_argument("--stack", help="the deployed CloudFormation stack to measure")
    aws.add_argument("--table", help="its order table, when the stack's outputs do not name it")
    aws.add_argument("--profile", help="the AWS profile to use (default: as the AWS CLI finds "
                                       "credentials)")
    aws.add_argument("--region", help="the stack's region (default: as the AWS CLI finds it)")
    aws.add_argument("--max-orders", type=positive(int), default=500,
                     help="orders in all, both phases, at most: each costs requests on AWS "
                     "(default: %(default)s)")
    aws.add_argument("--order-timeout", type=positive(float), default=30.0,
                     help="seconds an order may take to get its five stamps before it counts "
                     "as failed (default: %(default)s)")
    return cli


def stages(assembly: Path) -> tuple[str, dict[str, str], str]:
    """Our API stage, each stage's order table, and our bus, as the sandbox will name them."""
    tables, ours, bus = {}, "", ""
    for stack in read_assembly(assembly, "http://127.0.0.1"):
        (table,) = stack.of_type("AWS::DynamoDB::Table")
        (stage,) = stack.of_type("AWS::ApiGateway::Stage")
        name = stack.ref(stage.logical_id)
        tables[name] = stack.ref(table.logical_id)
        if name != TWIN_STAGE:
            ours = name
            (bus_resource,) = stack.of_type("AWS::Events::EventBus")
            bus = stack.ref(bus_resource.logical_id)
    return ours, tables, bus


def cpu_by_role(sandbox: SandboxProcess, labels: dict[str, str]) -> dict[str, float]:
    """CPU seconds used so far by the sandbox, DynamoDB Local, each stack's workers and the
    bench itself."""
    used: dict[str, float] = {}
    for process in sandbox.processes():
        role = process.role
        if role not in ("sandbox", "dynamodb-local"):
            role = "workers (workshop style)" if labels.get(role, "").startswith("Workshop") \
                else "workers"
        used[role] = used.get(role, 0.0) + (cpu_seconds(process.pid) or 0.0)
    own = resource.getrusage(resource.RUSAGE_SELF)
    used["bench (clients)"] = own.ru_utime + own.ru_stime
    return used


def memory(sandbox: SandboxProcess, labels: dict[str, str]) -> dict[str, Any]:
    """Peak resident memory (VmHWM) of the sandbox, DynamoDB Local and each function's workers."""
    found: dict[str, Any] = {"workers": {}}
    for process in sandbox.processes():
        peak_kb = proc_status_kb(process.pid, "VmHWM")
        if peak_kb is None:
            continue
        peak_mb = round(peak_kb / 1024, 1)
        if process.role in ("sandbox", "dynamodb-local"):
            found[process.role] = peak_mb
        else:
            workers = found["workers"].setdefault(labels.get(process.role, process.role),
                                                  {"count": 0, "peak_mb": 0.0})
            workers["count"] += 1
            workers["peak_mb"] = max(workers["peak_mb"], peak_mb)
    return found


def labels_of(orders: list[Order]) -> dict[str, str]:
    """Function name -> its label ('OrderService', 'WorkshopOrderService'), from traced orders."""
    return {record.function: record.service for order in orders
            for record in ([order.api] if order.api else []) + order.invocations}


def throughput_phase(args: argparse.Namespace, sandbox: SandboxProcess, history: History,
                     stage: str, labels: dict[str, str]) -> tuple[list[Order], dict[str, Any]]:
    """The closed loop, with the CPU each process used within the measured window."""
    window: dict[str, Any] = {}

    def sample_cpu() -> None:
        window["start"] = time.time() + args.warm_up
        time.sleep(args.warm_up)
        before = cpu_by_role(sandbox, labels)
        time.sleep(args.seconds)
        after = cpu_by_role(sandbox, labels)
        window["end"] = time.time()
        window["cores_used"] = {role: round((used - before.get(role, 0.0)) / args.seconds, 2)
                                for role, used in after.items()}

    sampler = threading.Thread(target=sample_cpu, name="cpu-sampler")
    began = time.monotonic()
    orders = closed_loop(sandbox.url, history, stage, args.users, args.warm_up + args.seconds,
                         "throughput", on_start=sampler.start)
    sampler.join()
    window["phase_s"] = round(time.monotonic() - began, 1)
    return orders, window


def measure(args: argparse.Namespace, sandbox: SandboxProcess, assembly: Path) -> dict[str, Any]:
    ours, tables, bus = stages(assembly)
    say = report.progress

    ddb_url = sandbox.dynamodb_url()
    raw = floor.Floor(ddb_url, sandbox.url, bus)
    raw.warm_up()

    history = History(sandbox.history_db)
    try:
        say(f"warm-up: {WARM_UP_ORDERS} orders on each stack")
        warm_up = one_at_a_time(sandbox.url, history, [ours, TWIN_STAGE], WARM_UP_ORDERS,
                                "warm-up")
        say(f"one at a time: {args.orders} orders on each stack, taking turns with the "
            "floor's raw calls")
        single = one_at_a_time(sandbox.url, history, [ours, TWIN_STAGE], args.orders, "single",
                               between=raw.sample)
        labels = labels_of([history.trace(order) for order in warm_up])
        say(f"ceiling: DynamoDB Local UpdateItem, {args.floor_clients} clients")
        updates_s = floor.update_item_throughput(ddb_url, args.floor_clients, args.floor_seconds)
        say(f"throughput: {args.users} users, {args.warm_up:g} s warm-up, "
            f"{args.seconds:g} s measured")
        loaded, window = throughput_phase(args, sandbox, history, ours, labels)
        say("ceiling again, after the load: the disk's speed drifts on a shared machine")
        updates_after_s = floor.update_item_throughput(ddb_url, args.floor_clients,
                                                       args.floor_seconds)
        everything = warm_up + single + loaded
        say(f"drain: waiting for every order to complete (at most {DRAIN_S:g} s)")
        wait_all(history, everything, DRAIN_S)
        traced = [history.trace(order) for order in everything]
        labels |= labels_of(traced)
        lost = lost_orders(ddb_url, tables, traced)
        peak = memory(sandbox, labels)
    finally:
        history.close()
    say("traces: the run's history replayed with and without its spans")
    floors = {"update_ms": raw.update_ms, "updates_s": (updates_s, updates_after_s),
              "put_ms": raw.put_events_ms, "through_ms": raw.update_through_endpoint_ms,
              "fan_out_ms": raw.fan_out_ms, "update_idle_ms": raw.update_after_idle_ms,
              "put_idle_ms": raw.put_events_after_idle_ms,
              "traces": trace_cost.cost(sandbox.history_db)}
    return results(args, ours, traced, lost, floors, window, peak)


def results(args: argparse.Namespace, ours: str, traced: list[Order], lost: list[str],
            floors: dict[str, Any], window: dict[str, Any],
            peak: dict[str, Any]) -> dict[str, Any]:
    """Every figure of the run, as the JSON file holds them."""
    update_ms, put_ms = floors["update_ms"], floors["put_ms"]
    updates_s = sum(floors["updates_s"]) / 2  # before and after the load
    single = [o for o in traced if o.phase == "single" and o.stage == ours]
    single_twin = [o for o in traced if o.phase == "single" and o.stage != ours]
    loaded = [o for o in traced if o.phase == "throughput"]
    in_window = [o for o in loaded if window["start"] <= o.sent <= window["end"]]
    update_p50 = analysis.percentile(update_ms, 50) or 0.0
    put_p50 = analysis.percentile(put_ms, 50) or 0.0
    floor_ms = 3 * update_p50 + 2 * put_p50
    ceiling = updates_s / 5
    e2e = [ms for ms in map(analysis.e2e_ms, single) if ms is not None]
    e2e_p50 = analysis.percentile(e2e, 50)
    throughput = analysis.throughput(loaded, window["start"], window["end"])
    paths = [p for p in map(analysis.critical_path, single) if p is not None]
    functions = analysis.functions(single + single_twin)
    # Cold starts one at a time (the warm-up's), apart from those of the load's spawning storm.
    cold = analysis.functions([o for o in traced if o.phase == "warm-up"])
    cold_loaded = analysis.functions(loaded)
    comparison = analysis.warm_comparison(
        {k: v for k, v in functions.items() if not k.startswith("Workshop")}, functions)
    hops = analysis.hops(single)
    return {
        "run": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average": [round(x, 2) for x in os.getloadavg()]},
        "sizes": {"orders": args.orders, "users": args.users, "seconds": args.seconds,
                  "warm_up_s": args.warm_up, "floor_clients": args.floor_clients,
                  "floor_seconds": args.floor_seconds},
        "e2e_p50_ms": analysis.rounded(e2e_p50),
        "e2e_p99_ms": analysis.rounded(analysis.percentile(e2e, 99)),
        "floor_ms": analysis.rounded(floor_ms),
        "throughput_orders_s": analysis.rounded(throughput),
        "ceiling_orders_s": analysis.rounded(ceiling),
        "warm_ratio": comparison["ratio"],
        "orders_lost": len(lost),
        "floor": {
            "update_item_ms": analysis.summary(update_ms),
            "update_item_per_s": analysis.rounded(updates_s, 1),
            "update_item_per_s_before_after": [analysis.rounded(x, 1)
                                               for x in floors["updates_s"]],
            "put_events_ms": analysis.summary(put_ms),
            "critical_path_ms": analysis.rounded(floor_ms),
            # The same UpdateItem through the sandbox's endpoint (`up --trace-dynamodb`).
            "update_item_through_endpoint_ms": analysis.summary(floors["through_ms"]),
            "pass_through_added_ms": analysis.added_p50(floors["through_ms"], update_p50),
            # Three UpdateItems to one item at once (the fan-out of order_created): not in the
            # floor, on the order's path all the same.
            "update_item_fan_out_ms": analysis.summary(floors["fan_out_ms"]),
            "fan_out_queueing_ms": analysis.added_p50(floors["fan_out_ms"], update_p50),
            # Each call after a pause with nothing running, as an order's calls come: not in
            # the floor either (`bench.floor`).
            "update_item_after_idle_ms": analysis.summary(floors["update_idle_ms"]),
            "put_events_after_idle_ms": analysis.summary(floors["put_idle_ms"]),
            "after_idle_added_ms": {
                "update_item": analysis.added_p50(floors["update_idle_ms"], update_p50),
                "put_events": analysis.added_p50(floors["put_idle_ms"], put_p50)},
        },
        # What the spans add to an order's writes (bench/trace_cost.py); goal: at most 1 ms.
        "traces": floors["traces"],
        "e2e": {
            "ms": analysis.summary(e2e),
            "client_answer_ms": analysis.summary((o.answered - o.sent) * 1000 for o in single),
            "critical_path_p50_ms": {name: analysis.rounded(analysis.percentile(
                [p[name] for p in paths], 50)) for name in analysis.SEGMENTS},
            "split": analysis.split(paths, floor_ms),
        },
        "throughput": {
            "orders_s": analysis.rounded(throughput),
            "ceiling_orders_s": analysis.rounded(ceiling),
            "orders_made": len(loaded),
            "phase_s": window["phase_s"],
            "e2e_ms": analysis.summary(
                ms for ms in map(analysis.e2e_ms, in_window) if ms is not None),
            "cores_used": window["cores_used"],
            # On a machine this small, CPU is what runs out first: who spends it per order.
            "cpu_ms_per_order": {role: analysis.rounded(cores * 1000 / throughput, 1)
                                 for role, cores in window["cores_used"].items()}
            if throughput else {},
            # Where the time goes under load: queueing shows as long warm durations (the
            # database) or long hops (the sandbox); cold starts within the window as inits.
            "hops_ms": {name: analysis.summary(values)
                        for name, values in analysis.hops(in_window).items()},
            "warm_p50_ms": {label: analysis.rounded(analysis.percentile(figures["warm"], 50))
                            for label, figures in sorted(analysis.functions(in_window).items())},
            "cold_starts": sum(len(figures["init"])
                               for figures in analysis.functions(in_window).values()),
        },
        "hops": {name: analysis.summary(values) for name, values in hops.items()},
        "functions": {label: {"warm_ms": analysis.summary(figures["warm"]),
                              "init_ms": analysis.summary(cold.get(label, {}).get("init", [])),
                              "init_under_load_ms": analysis.summary(
                                  cold_loaded.get(label, {}).get("init", []))}
                      for label, figures in sorted(functions.items())},
        "workshop": comparison,
        "memory_mb": peak,
        "orders": {"made": len(traced),
                   "not_accepted": sum(1 for o in traced if o.status != 200),
                   "lost": len(lost), "lost_ids": lost[:20]},
        "e2e_samples_ms": [round(ms, 2) for ms in e2e],
    }


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.stack:
        return deployed.main(args)
    if not (args.assembly / "manifest.json").is_file():
        print(f"bench: no cloud assembly at {args.assembly}: run `make synth` first",
              file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    try:
        assembly = workdir / "cdk.out"
        build(args.assembly, assembly)
        sandbox = SandboxProcess(assembly, workdir / "state", RETRY_SCALE)
        report.progress("starting the sandbox (ours and the workshop style's, one DynamoDB Local)")
        sandbox.start()
        try:
            figures = history.run(args, sandbox, stages(assembly)[0]) if args.history \
                else measure(args, sandbox, assembly)
        finally:
            sandbox.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.history:
        print(history.table(figures))
        written = [report.write_json(figures, args.results, "history-")]
    else:
        print(report.table(figures))
        written = report.write(figures, args.results)
    print(f"\nbench: results in {', '.join(str(p) for p in written)}")
    return 0
