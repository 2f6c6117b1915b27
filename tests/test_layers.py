"""The layers of DESIGN.md, read from the code: an import never runs upward.

audit imports nothing of ours; access imports only audit; hosts imports access and audit; jobs
imports hosts, access and audit; the wiring (remora_admin's own modules) imports anything. Any
import counts, at module level or inside a function.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = ("remora_admin", "hosts", "jobs", "lab")
# Each layer, by folder, and the layers of ours it may import (besides itself).
LAYERS = {
    "remora_admin/audit": set(),
    "remora_admin/access": {"remora_admin.audit"},
    "hosts": {"remora_admin.audit", "remora_admin.access"},
    "jobs": {"remora_admin.audit", "remora_admin.access", "hosts"},
}


def _layer_of(module: str) -> str:
    for prefix in ("remora_admin.audit", "remora_admin.access", "hosts", "jobs"):
        if module == prefix or module.startswith(prefix + "."):
            return prefix
    return "remora_admin" if module.startswith("remora_admin") else module.split(".")[0]


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return [(line, name) for line, name in found if name.split(".")[0] in OURS]


@pytest.mark.parametrize("folder", sorted(LAYERS))
def test_no_import_runs_upward(folder):
    own = folder.replace("/", ".")
    allowed = LAYERS[folder] | {own}
    upward = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for line, module in _imports(path):
            if _layer_of(module) not in allowed:
                upward.append(f"{path.relative_to(ROOT)}:{line} imports {module}")

    assert upward == [], "\n".join(upward)


def test_the_walk_sees_imports():
    assert any(m == "remora_admin.audit.log" for _, m in _imports(ROOT / "jobs/launch.py"))
    assert _layer_of("remora_admin.access.policy") == "remora_admin.access"
    assert _layer_of("remora_admin.views") == "remora_admin"


def test_only_the_ssh_module_imports_paramiko():
    users = []
    for folder in ("hosts", "jobs", "remora_admin"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                if any(n.split(".")[0] == "paramiko" for n in names):
                    users.append(str(path.relative_to(ROOT)))

    assert sorted(set(users)) == ["jobs/ssh.py"]
