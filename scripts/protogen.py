"""Regenerate the checked-in protobuf and gRPC code: `python3 scripts/protogen.py`.

A development script, not part of the installed package (a wheel has no protos/).
The .proto files live in protos/ under their package path (ledger/v1/...), so the
generated modules land at the mirrored import path (ledger.v1.*_pb2). The
generator is pinned in pyproject.toml; a test regenerates into a temporary
directory and fails if the checked-in files differ.
"""

from __future__ import annotations

import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"


def proto_files() -> list[pathlib.Path]:
    return sorted(PROTOS.rglob("*.proto"))


def generate(out_dir: pathlib.Path) -> None:
    """Write generated modules for every .proto under `out_dir` (mirrored paths)."""
    from grpc_tools import protoc

    args = [
        "grpc_tools.protoc",
        f"-I{PROTOS}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *(str(path.relative_to(PROTOS)) for path in proto_files()),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")


def main() -> int:
    generate(ROOT)
    for path in proto_files():
        print(f"generated code for {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
