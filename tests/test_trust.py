"""Nothing trusted blindly, checked in the source itself: no pickle, no shell, no unchecked loads."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCES = [
    path
    for folder in ("pixelsep_plugin", "host_bridge", "installers", "benchmarks")
    for path in sorted((REPO / folder).rglob("*.py"))
]
UNSAFE_MODULES = {"pickle", "cPickle", "dill", "marshal", "shelve", "joblib"}
SHELL_CALLS = {("os", "system"), ("os", "popen"), ("subprocess", "getoutput"), ("subprocess", "getstatusoutput")}


def _call_name(node: ast.Call) -> tuple[str, str] | None:
    func = node.func
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return func.value.id, func.attr
    if isinstance(func, ast.Name):
        return "", func.id
    return None


def _keyword(node: ast.Call, name: str):
    for keyword in node.keywords:
        if keyword.arg == name:
            return keyword.value
    return None


def _problems(path: Path) -> list[str]:
    problems = []
    tree = ast.parse(path.read_text(), str(path))
    where = path.relative_to(REPO)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            problems += [f"{where}:{node.lineno} imports {a.name}" for a in node.names if a.name.split(".")[0] in UNSAFE_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in UNSAFE_MODULES:
            problems.append(f"{where}:{node.lineno} imports {node.module}")
        elif isinstance(node, ast.Call):
            name = _call_name(node)
            shell = _keyword(node, "shell")
            if isinstance(shell, ast.Constant) and shell.value is True or shell is not None and not isinstance(shell, ast.Constant):
                problems.append(f"{where}:{node.lineno} runs a subprocess through a shell")
            if name in SHELL_CALLS:
                problems.append(f"{where}:{node.lineno} calls {'.'.join(name)}")
            if name in (("", "eval"), ("", "exec")):
                problems.append(f"{where}:{node.lineno} calls {name[1]}")
            if name == ("torch", "load"):
                weights_only = _keyword(node, "weights_only")
                if not (isinstance(weights_only, ast.Constant) and weights_only.value is True):
                    problems.append(f"{where}:{node.lineno} torch.load without weights_only=True")
            if name is not None and name[1] == "load" and name[0] in ("np", "numpy"):
                allow = _keyword(node, "allow_pickle")
                if isinstance(allow, ast.Constant) and allow.value is True:
                    problems.append(f"{where}:{node.lineno} np.load with allow_pickle=True")
    return problems


def test_no_pickle_no_shell_no_unchecked_loads():
    assert len(SOURCES) > 50
    problems = [problem for path in SOURCES for problem in _problems(path)]
    assert problems == []


def test_the_checker_finds_what_it_looks_for(tmp_path):
    bad = REPO / "tests" / "data" / ".trust-probe.py"
    bad.write_text(
        "import pickle\nimport os, subprocess, torch, numpy as np\nos.system('ls')\n"
        "subprocess.run('ls', shell=True)\ntorch.load('w.pt')\nnp.load('a.npy', allow_pickle=True)\neval('1')\n"
    )
    try:
        found = _problems(bad)
    finally:
        bad.unlink()
    assert [p.split(" ", 1)[1] for p in found] == [
        "imports pickle",
        "calls os.system",
        "runs a subprocess through a shell",
        "torch.load without weights_only=True",
        "np.load with allow_pickle=True",
        "calls eval",
    ]
