"""Watch mode and the CDK project around an assembly: what `cdk watch` watches, how stale an
assembly is, and synthesizing through the project's own CDK CLI.

- A project is a folder with a `cdk.json`. Its sources are the files its `watch` setting
  includes and does not exclude, as `cdk watch` reads them: patterns relative to the project,
  `**` for any folders, a pattern naming a folder covering what is under it; `cdk watch` always
  excludes the output folder, dot files and node_modules, and so does this.
- `cdk synth --no-staging` points each function's code at its source folder, so a saved
  handler is what the next worker imports: only the warm workers need replacing.
- The CLI is the project's own: the nearest node_modules/.bin/cdk up from the project, as npx
  finds it, else `cdk` on the PATH, else `npx --yes cdk`.
- Polling mtimes a few times a second needs no dependency and sees a save well within the
  3 s budget; an editor's rename-on-save changes the mtime too.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

POLL_S = 0.25
ALWAYS_EXCLUDED = ("**/.*", "**/node_modules", "**/__pycache__")


class SynthFailed(RuntimeError):
    """`cdk synth` failed; the message carries the end of its output."""


def matches(relative: str, pattern: str) -> bool:
    """Whether a path relative to the project, or a folder above it, matches a watch pattern."""
    parts = relative.split("/")
    wanted = pattern.strip("/").split("/")
    return any(_match(parts[:end], wanted) for end in range(1, len(parts) + 1))


def _match(parts: list[str], pattern: list[str]) -> bool:
    if not pattern:
        return not parts
    if pattern[0] == "**":
        return any(_match(parts[skip:], pattern[1:]) for skip in range(len(parts) + 1))
    return bool(parts) and fnmatch.fnmatchcase(parts[0], pattern[0]) and _match(parts[1:],
                                                                                pattern[1:])


def mtimes(files: Iterable[Path]) -> dict[Path, float]:
    found = {}
    for path in files:
        try:
            found[path] = path.stat().st_mtime
        except OSError:
            continue  # removed between listing and reading: the next poll sees it gone
    return found


def tree(folder: Path) -> Iterable[Path]:
    """The files under a folder, skipping bytecode and dot folders."""
    for root, folders, names in os.walk(folder):
        folders[:] = [f for f in folders if not f.startswith(".") and f != "__pycache__"]
        yield from (Path(root) / name for name in names)


@dataclass(frozen=True)
class Project:
    folder: Path
    includes: tuple[str, ...]
    excludes: tuple[str, ...]

    @classmethod
    def at(cls, folder: Path) -> Project | None:
        config = folder / "cdk.json"
        if not config.is_file():
            return None
        settings = json.loads(config.read_text())
        watch = settings.get("watch", {})
        return cls(folder.resolve(), tuple(watch.get("include") or ["**"]),
                   (*watch.get("exclude", []), settings.get("output", "cdk.out"),
                    *ALWAYS_EXCLUDED))

    def sources(self) -> dict[Path, float]:
        """Each source file with its mtime."""
        def watched(path: Path) -> bool:
            relative = path.relative_to(self.folder).as_posix()
            return (any(matches(relative, p) for p in self.includes)
                    and not any(matches(relative, p) for p in self.excludes))
        return mtimes(path for path in tree(self.folder) if watched(path))

    def stale(self, assembly: Path) -> bool:
        """Missing, or older than the newest source."""
        manifest = assembly / "manifest.json"
        if not manifest.is_file():
            return True
        return max(self.sources().values(), default=0) > manifest.stat().st_mtime

    def cli(self) -> list[str]:
        for folder in (self.folder, *self.folder.parents):
            local = folder / "node_modules" / ".bin" / "cdk"
            if local.is_file():
                return [str(local)]
        return ["cdk"] if shutil.which("cdk") else ["npx", "--yes", "cdk"]

    def synth(self, assembly: Path, staging: bool, say: Callable[[str], None]) -> None:
        command = [*self.cli(), "synth", "--quiet", "--output", str(assembly.resolve()),
                   *([] if staging else ["--no-staging"])]
        say(f"sandbox: synthesizing {self.folder} ({' '.join(command)})")
        done = subprocess.run(command, cwd=self.folder, capture_output=True, text=True)
        if done.returncode != 0:
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
            raise SynthFailed(f"cdk synth failed (exit {done.returncode}):\n{tail}")


def staged(assembly: Path) -> bool:
    """Whether any template's assets are copies inside the assembly (`cdk synth` without
    --no-staging): then a saved source is not what the functions run."""
    return any('"aws:asset:path": "asset.' in template.read_text()
               for template in assembly.glob("*.template.json"))


class Watcher:
    """Polls the functions' code folders and the project's sources: a saved handler calls
    `on_code(folder)`, any other source `on_app()`. One thread; callbacks run on it, so a
    reload is never run twice at once."""

    def __init__(self, project: Project | None, code_folders: Callable[[], Iterable[Path]],
                 on_code: Callable[[Path], None], on_app: Callable[[], None]) -> None:
        self.project = project
        self.code_folders = code_folders
        self.on_code = on_code
        self.on_app = on_app
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="watch", daemon=True)

    def start(self) -> None:
        self._code, self._app = self._snapshot()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _snapshot(self) -> tuple[dict[Path, dict[Path, float]], dict[Path, float]]:
        code = {folder: mtimes(tree(folder)) for folder in set(self.code_folders())}
        inside = tuple(code)
        app = {} if self.project is None else {
            path: mtime for path, mtime in self.project.sources().items()
            if not any(path.is_relative_to(folder) for folder in inside)}
        return code, app

    def _run(self) -> None:
        while not self._stop.wait(POLL_S):
            code, app = self._snapshot()
            if app != self._app:
                self.on_app()
                code, app = self._snapshot()  # the new assembly's code folders
            else:
                for folder, files in code.items():
                    if folder in self._code and files != self._code[folder]:
                        self.on_code(folder)
            self._code, self._app = code, app
