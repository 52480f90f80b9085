"""No traceback from any template: whatever a template holds, reading it and wiring every
service ends in a sandbox ready to start or in one `AssemblyError` that names the file, the
resource and the property.

Hypothesis mutates the breadth stack, which uses every building block the sandbox runs: one
property of one resource, or one value inside it (down to three levels), is removed or replaced
by a value of another type or shape. Nothing
is started (`Sandbox.wire`), so each example costs milliseconds.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox.assembly import AssemblyError, read_assembly
from sandbox.sandbox import Sandbox

pytestmark = pytest.mark.slow  # synthesizes the breadth stack

ODD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 100_000), st.text(max_size=12),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
    st.just({"Ref": "NoSuchResource"}), st.just({"Fn::GetAtt": ["NoSuch", "Arn"]}),
    st.just({"Fn::Join": ["", 5]}),
)


class Seed:
    """The breadth assembly copied to a folder of its own, and its template (kept out of
    Hypothesis's reports)."""

    def __init__(self, assembly: Path) -> None:
        self.assembly = assembly
        self.template = json.loads((assembly / TEMPLATE).read_text())

    def __repr__(self) -> str:
        return f"Seed({self.assembly})"


TEMPLATE = "Breadth.template.json"
# One line: the template file, then the resource and property (or the output) it is about.
NAMED = re.compile(rf"\S*{re.escape(TEMPLATE)}: (Resources\.\w+\.Properties"
                   r"(\.[^\s\[]+|\[[^\]]*\])*|Outputs\.\S+): \S")


@pytest.fixture(scope="module")
def seed(breadth_assembly: Path, tmp_path_factory: pytest.TempPathFactory) -> Seed:
    copy = tmp_path_factory.mktemp("mutated") / "assembly"
    shutil.copytree(breadth_assembly, copy)
    return Seed(copy)


def paths(value: Any, depth: int = 3) -> list[tuple[str | int, ...]]:
    """Every key and list index in `value`, down to `depth` levels."""
    if depth == 0 or not isinstance(value, dict | list):
        return []
    steps = value.items() if isinstance(value, dict) else enumerate(value)
    return [path for step, inner in steps
            for path in [(step,), *((step, *below) for below in paths(inner, depth - 1))]]


def properties_of(template: dict) -> list[tuple[str, tuple[str | int, ...]]]:
    return [(lid, path) for lid, resource in template["Resources"].items()
            for path in paths(resource.get("Properties") or {})]


def wire(assembly: Path, state: Path) -> None:
    sandbox = Sandbox(assembly, state, port=0)
    try:
        sandbox.wire(read_assembly(assembly, sandbox.url))
    finally:
        sandbox.stop()


def test_the_breadth_stack_itself_wires(seed: Seed, tmp_path: Path) -> None:
    wire(seed.assembly, tmp_path / "state")


@settings(max_examples=150, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_mutated_template_starts_or_names_what_is_wrong(
        seed: Seed, tmp_path: Path, data: Any) -> None:
    mutated = json.loads(json.dumps(seed.template))
    logical_id, path = data.draw(st.sampled_from(properties_of(seed.template)))
    holder = mutated["Resources"][logical_id]["Properties"]
    for step in path[:-1]:
        holder = holder[step]
    if data.draw(st.booleans()):
        del holder[path[-1]]
    else:
        holder[path[-1]] = data.draw(ODD_VALUES)
    (seed.assembly / TEMPLATE).write_text(json.dumps(mutated))
    try:
        wire(seed.assembly, tmp_path / "state")
    except AssemblyError as error:
        assert NAMED.match(str(error)) and "\n" not in str(error), str(error)
