"""Check a module's real result against its RETURN documentation.

``ansible-test sanity`` checks that RETURN is valid YAML with the right
fields; it cannot check that the module returns what RETURN says.  This does:
every key the module returns is documented (recursively through ``contains``),
its value has the documented type, every ``returned: always``/``success`` key
is there, and with ``exhaustive=True`` (a run that sets every option) every
documented key is there.
"""
from __future__ import annotations

import ast
import os
from typing import Any, Dict, List, Sequence

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# keys Ansible itself adds to every result
ANSIBLE_KEYS = {"changed", "failed", "msg", "invocation", "diff", "warnings", "deprecations",
                "_ansible_no_log", "_ansible_verbose_always", "ansible_facts", "skipped", "_rc", "_stdout",
                "_crash", "_tracebacks", "_runner", "_confirmation"}
# _rc and after: added by tests/lib/ansible_run.py and tests/lib/module_runner.py

TYPES = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "list": (list,),
    "dict": (dict,),
    "complex": (dict, list),
}


def return_doc(module: str) -> Dict[str, Any]:
    """The parsed RETURN block of ``plugins/modules/<module>.py``."""
    path = os.path.join(ROOT, "plugins", "modules", module + ".py")
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "RETURN":
            return yaml.safe_load(node.value.value) or {}
    raise AssertionError("%s has no RETURN" % path)


def _type_ok(value: Any, doc_type: str) -> bool:
    if doc_type == "raw" or value is None:
        return True
    if doc_type in ("int", "float") and isinstance(value, bool):
        return False
    return isinstance(value, TYPES.get(doc_type, (object,)))


def _check(value: Any, doc: Dict[str, Any], where: str, problems: List[str], seen: set) -> None:
    doc_type = doc.get("type", "str")
    if not _type_ok(value, doc_type):
        problems.append("%s: documented as %s, returned %s %r" % (where, doc_type, type(value).__name__, value))
        return
    contains = doc.get("contains")
    if not contains:
        return
    if doc_type == "list" and doc.get("elements") == "dict":
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                problems.append("%s[%d]: documented elements dict, returned %r" % (where, i, item))
                continue
            _check_keys(item, contains, "%s[]" % where, problems, seen)
    elif doc_type == "dict" and isinstance(value, dict):
        _check_keys(value, contains, where, problems, seen)


def _check_keys(result: Dict[str, Any], docs: Dict[str, Any], where: str, problems: List[str], seen: set) -> None:
    for key, value in result.items():
        name = "%s.%s" % (where, key) if where else key
        if not where and key in ANSIBLE_KEYS:
            continue
        if key not in docs:
            problems.append("%s: returned but not documented" % name)
            continue
        seen.add(name)
        _check(value, docs[key], name, problems, seen)
    if not where:
        required = ("always",) if result.get("failed") else ("always", "success")   # a failure is no success
        problems.extend("%s: documented as returned %s, missing" % (key, doc["returned"]) for key, doc in docs.items()
                        if key not in result and doc.get("returned") in required)


def _all_names(docs: Dict[str, Any], where: str = "") -> List[str]:
    names = []
    for key, doc in docs.items():
        name = "%s.%s" % (where, key) if where else key
        names.append(name)
        if doc.get("contains"):
            sub = "%s[]" % name if doc.get("type") == "list" else name
            names.extend(_all_names(doc["contains"], sub))
    return names


def check_return_doc(module: str, *results: Dict[str, Any], exhaustive: bool = False,
                     elsewhere: Sequence[str] = ()) -> None:
    """Assert that ``results`` (one or more runs of ``module``) agree with its RETURN.

    With ``exhaustive``, every documented key (nested ones too) must appear in
    at least one of the results, but those of ``elsewhere`` (dotted names another
    test shows, e.g. with ``must_return``).
    """
    docs = return_doc(module)
    problems: List[str] = []
    seen: set = set()
    for result in results:
        _check_keys(result, docs, "", problems, seen)
    if exhaustive:
        missing = [n for n in _all_names(docs) if n not in seen and n not in elsewhere]
        problems.extend("%s: documented but returned by none of the runs" % n for n in missing)
    assert not problems, "%s RETURN vs its output:\n  %s" % (module, "\n  ".join(problems))


def must_return(module: str, names: Sequence[str], *results: Dict[str, Any]) -> None:
    """Assert that ``results`` agree with ``module``'s RETURN and return each of ``names`` (dotted)."""
    docs = return_doc(module)
    problems: List[str] = []
    seen: set = set()
    for result in results:
        _check_keys(result, docs, "", problems, seen)
    problems.extend("%s: documented but returned by none of the runs" % n for n in names if n not in seen)
    assert not problems, "%s RETURN vs its output:\n  %s" % (module, "\n  ".join(problems))
