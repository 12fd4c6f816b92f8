"""The checked-in protobuf code must be what the pinned generator makes of protos/."""

from __future__ import annotations

import importlib.util
import pathlib
from types import ModuleType

SCRIPT = pathlib.Path(__file__).resolve().parent.parent / "scripts" / "protogen.py"


def load_protogen() -> ModuleType:
    """The development script, loaded from the checkout (it is not in the package)."""
    spec = importlib.util.spec_from_file_location("protogen", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_code_is_fresh(tmp_path: pathlib.Path) -> None:
    protogen = load_protogen()
    protogen.generate(tmp_path)
    generated = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert generated, "the generator produced nothing"
    stale = [
        str(path) for path in generated
        if (protogen.ROOT / path).read_bytes() != (tmp_path / path).read_bytes()
    ]
    assert not stale, f"regenerate with `python3 scripts/protogen.py`: {stale} are stale"


def test_every_proto_has_generated_code_checked_in() -> None:
    protogen = load_protogen()
    for proto in protogen.proto_files():
        module = protogen.ROOT / proto.relative_to(protogen.PROTOS).with_suffix("")
        assert module.with_name(module.name + "_pb2.py").exists(), proto

