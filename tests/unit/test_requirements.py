"""requirements.txt (what managed hosts and the execution environment install) lists exactly
the third-party packages the collection's plugins import: nothing missing, nothing extra."""
from __future__ import annotations

import ast
import os
import re
import sys

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# import name -> distribution name, where they differ
# (httpcore and h2 are what httpx[http2] installs; the provider probe uses them through httpx)
DISTRIBUTIONS = {"yaml": "pyyaml", "httpcore": "httpx", "h2": "httpx"}


def third_party_imports(top):
    found = {}
    for base, _dirs, files in os.walk(top):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(base, name)
            with open(path, encoding="utf-8") as f:
                tree = ast.parse(f.read(), path)
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    mods = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                    mods = [node.module]
                else:
                    continue
                for mod in mods:
                    root = mod.split(".")[0]
                    # jinja2 (controller-side report writers) comes with ansible-core itself
                    if root in sys.stdlib_module_names or root in ("ansible", "ansible_collections", "__future__",
                                                                   "jinja2"):
                        continue
                    found.setdefault(DISTRIBUTIONS.get(root, root), os.path.relpath(path, REPO))
    return found


def requirements(path):
    names = set()
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line and not line.startswith("-"):
                names.add(re.split(r"[\[<>=!~; ]", line, maxsplit=1)[0].lower())
    return names


def test_requirements_txt_is_what_the_plugins_import():
    imported = third_party_imports(os.path.join(REPO, "plugins"))
    listed = requirements(os.path.join(REPO, "requirements.txt"))
    assert set(imported) == listed, ("imported by plugins/: %s" % imported, "requirements.txt: %s" % listed)


def test_execution_environment_installs_requirements_txt():
    with open(os.path.join(REPO, "meta", "execution-environment.yml")) as f:
        ee = yaml.safe_load(f)
    assert ee["dependencies"]["python"] == "requirements.txt"
