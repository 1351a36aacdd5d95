"""Write the Lambda layer's requirements file from pyproject.toml, the one dependency list.

    python infra/layer_requirements.py          (make build runs it before sam build)

`sam build` installs a layer from the requirements.txt in its ContentUri (shared/), so
that file is derived here, never edited by hand: the project's dependencies, less the
ones Lambda provides or only a local run uses. tests/unit/test_template.py fails while
the committed file is stale.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parent.parent
LAYER_REQUIREMENTS: Final = ROOT / "shared" / "requirements.txt"
# boto3 comes with the Lambda runtime; uvicorn serves `turnwall serve` and tqdm draws the
# CLI's progress bars, neither of which runs on Lambda.
NOT_IN_LAYER: Final = frozenset({"boto3", "uvicorn", "tqdm"})
_NAME: Final = re.compile(r"[A-Za-z0-9._-]+")


def layer_requirements(pyproject: Path = ROOT / "pyproject.toml") -> str:
    """The requirements file's text for the dependencies in `pyproject`."""
    project = tomllib.loads(pyproject.read_text())["project"]
    wanted = [spec for spec in project["dependencies"] if _name(spec).lower() not in NOT_IN_LAYER]
    header = (
        "# Generated from pyproject.toml by infra/layer_requirements.py (make build): edit\n"
        "# pyproject.toml, not this file. What sam build installs in the Lambda layer.\n"
    )
    return header + "".join(f"{spec}\n" for spec in sorted(wanted, key=str.lower))


def _name(spec: str) -> str:
    match = _NAME.match(spec)
    if match is None:
        raise ValueError(f"not a requirement: {spec!r}")
    return match.group()


if __name__ == "__main__":
    LAYER_REQUIREMENTS.write_text(layer_requirements())
    sys.stdout.write(f"wrote {LAYER_REQUIREMENTS.relative_to(ROOT)}\n")
