"""The checked-in protobuf code must be what the pinned generator makes of protos/."""

from __future__ import annotations

import pathlib

from ledger import protogen


def test_generated_code_is_fresh(tmp_path: pathlib.Path) -> None:
    protogen.generate(tmp_path)
    generated = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert generated, "the generator produced nothing"
    stale = [
        str(path) for path in generated
        if (protogen.ROOT / path).read_bytes() != (tmp_path / path).read_bytes()
    ]
    assert not stale, f"regenerate with `python -m ledger.protogen`: {stale} are stale"


def test_every_proto_has_generated_code_checked_in() -> None:
    for proto in protogen.proto_files():
        module = protogen.ROOT / proto.relative_to(protogen.PROTOS).with_suffix("")
        assert module.with_name(module.name + "_pb2.py").exists(), proto
