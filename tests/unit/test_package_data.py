"""Files the code reads at run time ship with it: in the wheel (pyproject package-data)
and in the Lambda layer (sam build copies the layer's ContentUri, the folder holding
the turnwall package)."""

from __future__ import annotations

import tomllib
from pathlib import PurePosixPath

from tests.support.events import ROOT
from turnwall.stores.dynamodb.table import load_template
from turnwall.stores.redis import scripts

PACKAGE = ROOT / "shared" / "turnwall"
# Read by people, not by the code: need not ship.
_DOCUMENTATION = {".md"}


def package_data_patterns() -> list[str]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return list(pyproject["tool"]["setuptools"]["package-data"]["turnwall"])


def test_every_data_file_of_the_package_is_package_data() -> None:
    patterns = package_data_patterns()
    data_files = [
        PurePosixPath(path.relative_to(PACKAGE).as_posix())
        for path in PACKAGE.rglob("*")
        if path.is_file()
        and path.suffix not in {".py", ".pyc", *_DOCUMENTATION}
        and "__pycache__" not in path.parts
    ]

    unshipped = [str(path) for path in data_files if not any(path.match(p) for p in patterns)]

    assert any(path.suffix == ".lua" for path in data_files)
    assert unshipped == []


def test_the_layer_is_built_from_the_folder_holding_the_package() -> None:
    layer = load_template(ROOT / "template.yaml")["Resources"]["TurnwallLayer"]["Properties"]

    assert (ROOT / layer["ContentUri"]).resolve() == PACKAGE.parent.resolve()


def test_every_lua_script_is_read_from_its_file_with_the_shared_helpers() -> None:
    loaded = [value for value in vars(scripts).values() if isinstance(value, scripts.LuaScript)]
    on_disk = {path.stem for path in (PACKAGE / "stores" / "redis" / "scripts").glob("*.lua")}

    assert {script.name for script in loaded} == on_disk - {"helpers"}
    for script in loaded:
        assert "redis.call" in script.source
        assert len(script.sha) == 40
    assert "local function slide" in scripts.TOUCH.source
    assert "local function slide" not in scripts.DELETE.source
