"""The package's layers, bottom to top, and the rule that keeps them apart: a module imports only from its own
layer or the layers below, counting imports inside functions and module names written as strings
(`importlib.import_module("vaenb...")`, registry paths). The base module of each kind names none of its plug-ins.
The intended picture is the layout table in nbs/index.ipynb; this test keeps it true."""
import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "vaenb"
LAYERS = (  # (layer, module prefixes), bottom first
    ("core", ("vaenb.core",)),
    ("data", ("vaenb.data",)),
    ("nets", ("vaenb.nets",)),
    ("models", ("vaenb.models", "vaenb.regularisers")),
    ("train", ("vaenb.train",)),
    ("metrics", ("vaenb.metrics",)),
    ("viz", ("vaenb.viz",)),
    ("experiments", ("vaenb.experiments",)),
    ("studies", ("vaenb.studies",)),
    ("cli", ("vaenb.cli", "vaenb.docs", "vaenb.site")),
)
# the base of each kind of plug-in, and the packages its plug-ins live in
BASES = {"vaenb.core.registry": ("vaenb.",), "vaenb.data.base": ("vaenb.data.",), "vaenb.nets": ("vaenb.models.", "vaenb.regularisers."),
         "vaenb.models.vae": ("vaenb.models.", "vaenb.regularisers."), "vaenb.train": ("vaenb.models.", "vaenb.regularisers.")}
NAME = re.compile(r"\bvaenb(?:\.[a-z_0-9]+)+")


def rank(module: str) -> int | None:
    for i, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes): return i
    return None


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def referenced(path: Path, here: str | None = None) -> set[str]:
    "Every vaenb module that `path` (module `here`, default: its name in the package) imports (at any depth) or names in a string."
    tree, here = ast.parse(path.read_text()), here or module_name(path)
    package = here if path.name == "__init__.py" else here.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import): found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level: base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            found |= {base} | {f"{base}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Constant) and isinstance(node.value, str): found |= set(NAME.findall(node.value))
    return {m for m in found if m.startswith("vaenb.") and m != here}


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "_modidx.py" and module_name(p) != "vaenb")


def test_every_module_has_a_layer():
    assert [module_name(p) for p in MODULES if rank(module_name(p)) is None] == []


@pytest.mark.parametrize("path", MODULES, ids=[module_name(p) for p in MODULES])
def test_no_module_reaches_up(path):
    mine = rank(module_name(path))
    upward = sorted(m for m in referenced(path) if (r := rank(m)) is not None and r > mine)
    assert upward == [], f"{module_name(path)} (layer {LAYERS[mine][0]}) refers to higher layers: {upward}"


@pytest.mark.parametrize("base", sorted(BASES))
def test_bases_name_no_plugin(base):
    path = PACKAGE.parent / (base.replace(".", "/") + ".py")
    own_package = base.rsplit(".", 1)[0] + "."
    plugins = sorted(m for m in referenced(path) if m.startswith(BASES[base]) and not m.startswith(base)
                     and not (m.startswith(own_package + "base") or m == own_package.rstrip(".")))
    allowed = {"vaenb.core.config", "vaenb.core.registry", "vaenb.nets", "vaenb.models.vae"}
    assert [m for m in plugins if not any(m == a or m.startswith(a + ".") for a in allowed)] == []


def test_the_rule_catches_a_reach_up(tmp_path):
    "A function-level import and a string name both count (the test can fail)."
    probe = tmp_path / "probe.py"   # read as if it were vaenb.data.probe, never written into the package
    probe.write_text('def f():\n    from vaenb.train import train\n\nWHERE = "vaenb.experiments.runs:RunConfig"\n')
    assert {"vaenb.train", "vaenb.train.train", "vaenb.experiments.runs"} <= referenced(probe, "vaenb.data.probe")
