"""Compile the built Lambda layer to bytecode, once, at build time (and leave out the
modules only a workstation runs).

    python infra/compile_layer.py .aws-sam/build/TurnwallLayer/python     (make build)

`sam build` ships sources only, and a layer is read-only on Lambda, so without this
every cold start compiles every module it imports (turnwall, FastAPI, pydantic, redis,
...) again. The bytecode is unchecked-hash based: the runtime loads it without looking
at the sources' timestamps, which a zip does not keep exactly anyway, and a layer never
changes after it is built. Bytecode of another Python than the runtime's would be
ignored, so a build on another version says so and ships sources as before.
"""

from __future__ import annotations

import compileall
import py_compile
import sys
from pathlib import Path
from typing import Final

RUNTIME: Final = (3, 12)  # template.yaml: Runtime python3.12
# Modules of the package for a workstation, never imported on Lambda: `sam build` copies
# all of shared/, so they are taken out of the built layer here.
NOT_SHIPPED: Final = ("turnwall/evaluation.py",)
# Lambda's limit on a function and its layers, unzipped (250 MiB); the functions' own
# code is a few KB. The layer is about 237 MB: onnxruntime 82, numpy 74, turnwall's
# models 31.
UNZIPPED_LIMIT: Final = 262_144_000


def prune_layer(directory: Path) -> list[str]:
    """Remove the NOT_SHIPPED modules from a built layer; the ones that were there."""
    removed: list[str] = []
    for name in NOT_SHIPPED:
        module = directory / name
        if module.exists():
            module.unlink()
            removed.append(name)
    return removed


def layer_bytes(directory: Path) -> int:
    """The size of every file under `directory`, as Lambda counts it unzipped."""
    return sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())


def compile_layer(directory: Path) -> bool:
    """Compile every module under `directory`; whether all of them compiled."""
    return bool(
        compileall.compile_dir(
            directory,
            quiet=1,
            workers=0,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
    )


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not Path(argv[0]).is_dir():
        sys.stderr.write("usage: python infra/compile_layer.py LAYER_DIRECTORY\n")
        return 2
    for name in prune_layer(Path(argv[0])):
        sys.stdout.write(f"left {name} out of the layer\n")
    if sys.version_info[:2] != RUNTIME:
        sys.stderr.write(
            f"compile_layer: Python {sys.version_info.major}.{sys.version_info.minor} is not "
            f"the runtime's {RUNTIME[0]}.{RUNTIME[1]}; the layer ships sources only\n"
        )
        return 0
    # Some dependencies carry files for other Python versions that do not compile; the
    # modules that do are written all the same.
    complete = compile_layer(Path(argv[0]))
    skipped = "" if complete else " (some files skipped)"
    sys.stdout.write(f"compiled {argv[0]} to bytecode{skipped}\n")
    size = layer_bytes(Path(argv[0]))
    sys.stdout.write(f"layer: {size:,} bytes unzipped (Lambda allows {UNZIPPED_LIMIT:,})\n")
    if size > UNZIPPED_LIMIT:
        sys.stderr.write("compile_layer: the layer is over Lambda's unzipped limit\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
