"""The layout as a newcomer meets it: the README names every module, and tests import as one package."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "srgan_cli"


def layout_rows() -> dict[str, str]:
    """Layout table rows of the README: the path cell (e.g. 'srgan_cli/upscale/') to the 'owns' cell."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0].startswith("`srgan_cli/"):
            rows[cells[0].strip("`")] = cells[1]
    return rows


def packages() -> list[Path]:
    return [PACKAGE, *(p.parent for p in PACKAGE.glob("*/__init__.py"))]


def named(package: Path, rows: dict[str, str]) -> list[str]:
    """The modules and sub-packages of `package` that its row does not name (as `x.py`, `x/`, `` `x` `` or a row)."""
    key = "srgan_cli/" if package == PACKAGE else f"srgan_cli/{package.name}/"
    row = rows.get(key, "")
    modules = [p.stem for p in package.glob("*.py") if p.name != "__init__.py"]
    subpackages = [p.parent.name for p in package.glob("*/__init__.py")]
    missing = [m for m in modules if f"{m}.py" not in row and f"`{m}`" not in row]
    return missing + [s for s in subpackages if f"{s}/" not in row and f"{key}{s}/" not in rows]


@pytest.mark.parametrize("package", packages(), ids=lambda p: p.name)
def test_layout_row_names_every_module(package: Path) -> None:
    rows = layout_rows()
    key = "srgan_cli/" if package == PACKAGE else f"srgan_cli/{package.name}/"
    assert key in rows, f"README Layout has no row for {key}"
    assert named(package, rows) == [], f"README Layout's {key} row does not name these"


def test_a_module_left_out_is_caught(tmp_path: Path) -> None:
    rows = layout_rows()
    assert named(PACKAGE / "upscale", {**rows, "srgan_cli/upscale/": "`tiling.py` only"})


def test_tests_import_each_other_as_the_tests_package() -> None:
    files = [p for p in (ROOT / "tests").rglob("*.py") if p != Path(__file__)]  # not this file's own words
    hacks = [f"{p.relative_to(ROOT)}:{n}" for p in files
             for n, line in enumerate(p.read_text().splitlines(), 1)
             if "sys.path.insert" in line or line.strip().startswith(("from conftest ", "import conftest"))]
    assert hacks == [], "import from the tests package (from tests.conftest import ...) instead"
