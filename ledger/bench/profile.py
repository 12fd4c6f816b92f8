"""Where a node's CPU went: a summary of py-spy's raw output (collapsed stacks).

py-spy's `--format raw` writes one line per distinct stack, outermost frame first:

    <module> (ledger/__main__.py:3);run (asyncio/runners.py:190);...;f (ledger/bank/x.py:12) 7

each frame `function (file:line)`, the last number how many samples had that stack.
py-spy records only stacks that were running (not idle) unless told otherwise, so
the samples are where the CPU went. Pure: text in, summary out.

A sample's layer is the ledger package of its innermost frame inside `ledger`
(`ledger/paxos/...` is `paxos`; a module right under `ledger/` is named by itself),
so time in grpc or asyncio called from the ledger's code counts for the code that
called it. Samples with no ledger frame at work are named by their innermost frame's
origin: `grpc`, `asyncio`, `lmdb`, `protobuf` or `other`.

The frames that start the program and its event loop (`ledger/__main__.py`, the CLI,
the function that runs the loop: everything outside the outermost asyncio or
threading frame) are not at work: they sit under every sample of the main thread.
A sample whose innermost frame is the loop's runner (`Runner.run`) is the event loop
itself (uvloop's is C) and the C or Cython code it calls with no Python frame of its
own, grpc's among it: it is named `asyncio`.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

TOP_FUNCTIONS = 15

#: Where a frame outside the ledger comes from, by the directories of its file.
ORIGINS = (("grpc", ("grpc/",)), ("asyncio", ("asyncio/",)), ("lmdb", ("lmdb/",)),
           ("protobuf", ("google/protobuf/",)))

#: The files whose frames start the work: an event loop, a thread (what is outside
#: the outermost of them only started the program).
WORK_STARTS = ("asyncio/", "threading.py")

_FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


@dataclass(frozen=True)
class Frame:
    function: str
    file: str

    @property
    def label(self) -> str:
        """The function without its line: every line of one function counts together."""
        return f"{self.function} ({self.file})" if self.file else self.function


@dataclass(frozen=True)
class Profile:
    samples: int
    layers: list[tuple[str, int]]  # most samples first
    top: list[tuple[str, int]]  # functions by self samples (innermost frame), most first

    def share(self, count: int) -> float:
        return count / self.samples if self.samples else 0.0


def parse_frame(text: str) -> Frame:
    match = _FRAME.match(text.strip())
    if match is None:
        return Frame(text.strip(), "")
    return Frame(match["function"], match["file"])


def parse_raw(raw: str) -> list[tuple[list[Frame], int]]:
    """Each stack (outermost frame first) with its sample count; lines that are not
    `stack COUNT` are skipped."""
    stacks = []
    for line in raw.splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        stacks.append(([parse_frame(frame) for frame in stack.split(";")], int(count)))
    return stacks


def ledger_layer(file: str) -> str | None:
    """The ledger package a file belongs to (`ledger/storage/lmdb/store.py`: storage; a
    module right under `ledger/` is named by itself), else None."""
    parts = file.replace("\\", "/").split("/")
    if not parts[-1].endswith(".py"):
        return None
    found = [index for index, part in enumerate(parts[:-1]) if part == "ledger"]
    if not found:
        return None
    rest = parts[found[-1] + 1:]  # the last: a checkout may itself sit in a `ledger` dir
    return rest[0] if len(rest) > 1 else rest[0].removesuffix(".py")


def origin(file: str) -> str:
    path = "/" + file.replace("\\", "/")
    for name, directories in ORIGINS:
        if any(f"/{directory}" in path for directory in directories):
            return name
    return "other"


def at_work(stack: list[Frame]) -> list[Frame]:
    """The frames from the outermost event loop or thread frame in; all, with none."""
    for index, frame in enumerate(stack):
        path = "/" + frame.file.replace("\\", "/")
        if any(f"/{start}" in path for start in WORK_STARTS):
            return stack[index:]
    return stack


def layer(stack: list[Frame]) -> str:
    """The innermost ledger frame's package, among the frames at work; with none, the
    innermost frame's origin."""
    for frame in reversed(at_work(stack)):
        found = ledger_layer(frame.file)
        if found is not None:
            return found
    return origin(stack[-1].file) if stack else "other"


def summarise(raw: str, top: int = TOP_FUNCTIONS) -> Profile:
    layers: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    for stack, count in parse_raw(raw):
        layers[layer(stack)] += count
        if stack:
            functions[stack[-1].label] += count
    return Profile(sum(layers.values()), _ranked(layers), _ranked(functions)[:top])


def _ranked(counts: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def render(profile: Profile, title: str) -> str:
    """The summary as text: `title`, the share of samples by layer, the top functions."""
    lines = [title]
    if not profile.samples:
        lines.append("  no samples: the node ran no Python code while it was watched")
        return "\n".join(lines)
    lines.append(f"  {profile.samples:,} samples (active only)")
    lines.append("  (active: py-spy did not see the thread idle; one waiting inside C code, a")
    lines.append("  disk sync or a queue, can count)")
    lines.append("  by layer: the innermost frame in the ledger, else where the innermost frame")
    lines.append("  comes from (asyncio: the event loop, its own C code included)")
    for name, count in profile.layers:
        lines.append(f"    {name:<12}{profile.share(count):>7.1%}{count:>10,}")
    lines.append(f"  top {len(profile.top)} functions by self samples (innermost frame)")
    for label, count in profile.top:
        lines.append(f"    {profile.share(count):>6.1%}{count:>9,}  {label}")
    return "\n".join(lines)


def as_json(profile: Profile) -> dict[str, object]:
    return {"samples": profile.samples,
            "layers": {name: profile.share(count) for name, count in profile.layers},
            "top": [{"function": label, "samples": count, "share": profile.share(count)}
                    for label, count in profile.top]}
