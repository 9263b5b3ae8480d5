"""The benchmarks import the product inside ``main()`` (after their arguments are parsed), so a renamed function
breaks ``make bench`` only hours into it: every name a bench script imports from the product must exist."""
import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCT_PACKAGES = ("spark_ml_pipeline", "pipelines", "features", "jobs")
SCRIPTS = sorted((ROOT / "bench").glob("*.py"))


def product_imports(script: Path) -> list[tuple[str, str]]:
    tree = ast.parse(script.read_text(), str(script))
    return [(node.module, alias.name) for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
            and node.module and node.module.split(".")[0] in PRODUCT_PACKAGES for alias in node.names]


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_every_product_name_a_bench_script_imports_exists(script):
    missing = []
    for module_name, name in product_imports(script):
        module = importlib.import_module(module_name)
        if not hasattr(module, name):
            try:
                importlib.import_module(f"{module_name}.{name}")
            except ModuleNotFoundError:
                missing.append(f"{module_name}.{name}")
    assert not missing, f"{script.name} imports names the product does not have: {', '.join(missing)}"
