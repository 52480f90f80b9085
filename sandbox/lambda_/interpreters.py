"""Which Python runs a function's workers: one of its runtime's version when this machine has one.

A function declared `python3.12` that runs on another Python hides exactly the bugs a local run
should catch (a standard-library function added or removed, a syntax the runtime refuses), so:
- `--python PATH` chooses the interpreter for every function;
- otherwise the sandbox's own Python, when it is of the runtime's version;
- otherwise `python3.X` on the PATH (`shutil.which`) runs the functions of runtime `python3.X`,
  if AWS's runtime interface client (awslambdaric) is importable by it: the worker is
  `<python> -m awslambdaric <handler>`;
- otherwise the sandbox's own Python runs them, and the start says so once per runtime, with
  what differs: the standard library's version, and boto3 (the one installed here, where
  Lambda's runtime bundles its own: per AWS's "Runtime-included SDK versions", it depends on the
  runtime's version and the Region, so no number is promised here).

An interpreter is asked once (a subprocess of a few tens of milliseconds) for its version and its
awslambdaric and boto3.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass

AWSLAMBDARIC = "awslambdaric==4.2.2"  # constraints.txt's pin
_PROBE = (
    "import importlib.metadata as m, importlib.util as u, json, platform\n"
    "try:\n"
    "    boto3 = m.version('boto3')\n"
    "except m.PackageNotFoundError:\n"
    "    boto3 = None\n"
    "print(json.dumps({'version': platform.python_version(), 'boto3': boto3,\n"
    "                  'ric': u.find_spec('awslambdaric') is not None}))\n"
)


class InterpreterError(Exception):
    """`--python` names an interpreter that cannot run workers."""


@dataclass(frozen=True)
class Interpreter:
    path: str
    version: str  # "3.11.7"
    boto3: str | None  # its boto3's version, if it has one
    has_ric: bool  # awslambdaric importable

    @property
    def minor(self) -> str:
        return ".".join(self.version.split(".")[:2])


def runtime_version(runtime: str) -> str:
    """`python3.12` -> `3.12`."""
    return runtime.removeprefix("python")


@functools.cache
def probe(path: str) -> Interpreter | None:
    """What `path` is, or None when it does not run as a Python."""
    try:
        done = subprocess.run([path, "-c", _PROBE], capture_output=True, text=True, timeout=30,
                              check=True)
        found = json.loads(done.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return Interpreter(path, found["version"], found["boto3"], found["ric"])


def chosen_interpreter(path: str) -> Interpreter:
    """The interpreter `--python` names, checked: it must run, and import awslambdaric."""
    found = probe(path)
    if found is None:
        raise InterpreterError(f"--python {path}: not a Python interpreter that runs here")
    if not found.has_ric:
        raise InterpreterError(
            f"--python {path}: AWS's runtime interface client is not importable by it (Python "
            f"{found.version}); install it with: {path} -m pip install {AWSLAMBDARIC}")
    return found


class Interpreters:
    """The interpreter of each Python runtime, chosen once; `notes` says what start must say."""

    def __init__(self, chosen: str | None = None) -> None:
        self._chosen = chosen_interpreter(chosen) if chosen else None
        self._own: Interpreter | None = None
        self._by_runtime: dict[str, Interpreter] = {}
        self._why: dict[str, str] = {}  # runtime -> why its version's Python is not used
        self._functions: dict[str, list[str]] = {}  # runtime -> the functions declaring it

    def for_runtime(self, runtime: str, function: str) -> str:
        """The interpreter that runs `function`, of runtime `runtime`."""
        self._functions.setdefault(runtime, []).append(function)
        if runtime not in self._by_runtime:
            self._by_runtime[runtime] = self._choose(runtime)
        return self._by_runtime[runtime].path

    def _choose(self, runtime: str) -> Interpreter:
        if self._chosen is not None:
            return self._chosen
        if self.own().minor == runtime_version(runtime):
            return self.own()
        name = f"python{runtime_version(runtime)}"
        path = shutil.which(name)
        found = probe(path) if path else None
        if found is not None and found.has_ric:
            return found
        if path is None:
            self._why[runtime] = f"no {name} on the PATH"
        elif found is None:
            self._why[runtime] = f"{path} does not run"
        else:
            self._why[runtime] = (f"{path} lacks awslambdaric: {path} -m pip install "
                                  f"{AWSLAMBDARIC} to use it")
        return self.own()

    def own(self) -> Interpreter:
        if self._own is None:
            self._own = probe(sys.executable) or Interpreter(
                sys.executable, ".".join(map(str, sys.version_info[:3])), None, True)
        return self._own

    def notes(self) -> list[str]:
        """One line per runtime whose functions run on another Python than the runtime's."""
        lines = []
        for runtime, functions in sorted(self._functions.items()):
            used = self._by_runtime[runtime]
            if used.minor == runtime_version(runtime):
                continue
            why = self._why.get(runtime, "chosen with --python")
            boto3 = f"boto3 {used.boto3}" if used.boto3 else "no boto3"
            lines.append(
                f"{runtime} functions ({', '.join(sorted(functions))}) run on Python "
                f"{used.version} ({used.path}; {why}): its standard library is {used.minor}'s, "
                f"not {runtime_version(runtime)}'s, and they get {boto3}, not the one Lambda's "
                f"{runtime} runtime bundles")
        return lines
