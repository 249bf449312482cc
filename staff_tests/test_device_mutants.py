"""The catalogue of device and dtype mutants (``staff_tests/mutants/device.json``): the library's check shows each.

A device mutant is a bug that gives the reference's values on the CPU and breaks once the model is
on a GPU (``torch.zeros(n, D)`` without ``device=``, a mask kept as a plain attribute, ``.numpy()``
inside ``forward``, ...); a dtype mutant gives the reference's values in float32 and breaks in
float64 (float32 hard-coded).  Each is one find/replace of a solution file, in the format of
``staff_tests/mutants/`` plus ``kind`` ("device" or "float64").  ``test_mutants.py`` grades them like
every other mutant (the public tests' device parts catch them); here each is shown by
``src.device_check``'s parts of its question, as ``python -m src check`` runs them:

* on the CPU, in float32, it gives the reference's values (it is not a value bug);
* a device mutant is refused on the stand-in device, or gives other values there than on the CPU;
  a float64 mutant is refused in float64 or differs from the reference's float64 values;
* the message starts with a function of the mutated file (``MADE.sample: ...``).

    python -m pytest staff_tests/test_device_mutants.py -q      # about 30 s on 2 busy cores
"""
import ast
import json
import shutil

import pytest
from conftest import ROOT

from src import device_check

CATALOGUE = json.loads((ROOT / "staff_tests" / "mutants" / "device.json").read_text())


def _qualnames(source):
    """Every function of a module, as ``Class.method`` or ``function``."""
    names = set()

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.ClassDef)):
                name = prefix + child.name
                if isinstance(child, ast.FunctionDef):
                    names.add(name)
                visit(child, name + ".")
    visit(ast.parse(source), "")
    return names


@pytest.fixture(scope="module")
def reference():
    return device_check.load_modules(ROOT / "solution")


def test_catalogue_is_well_formed():
    ids = [m["id"] for m in CATALOGUE]
    assert len(ids) == len(set(ids)) and len(ids) >= 20
    manifest = json.loads((ROOT / "tests" / "points.json").read_text())
    parts = {p.question for p in device_check.PARTS}
    for mutant in CATALOGUE:
        assert mutant["question"] in manifest["questions"] and mutant["question"] in parts, mutant["id"]
        assert mutant["kind"] in ("device", "float64"), mutant["id"]
        source = (ROOT / "solution" / mutant["file"]).read_text()
        assert source.count(mutant["find"]) == 1, mutant["id"]
        compile(source.replace(mutant["find"], mutant["replace"]), f"{mutant['id']}/{mutant['file']}", "exec")


@pytest.mark.parametrize("mutant", CATALOGUE, ids=[m["id"] for m in CATALOGUE])
def test_mutant_keeps_cpu_values_and_is_shown(mutant, reference, tmp_path):
    for name in ("autoregressive", "made", "pixelcnn"):
        shutil.copy(ROOT / "solution" / f"{name}.py", tmp_path / f"{name}.py")
    target = tmp_path / mutant["file"]
    source = target.read_text().replace(mutant["find"], mutant["replace"])
    target.write_text(source)
    mods = device_check.load_modules(tmp_path)
    parts = [p for p in device_check.PARTS if p.question == mutant["question"]]

    for part in parts:  # a device bug, not a value bug: the CPU's values in float32
        problem = device_check.compare(device_check.run_part(part, reference), device_check.run_part(part, mods),
                                       exact=False)
        assert problem is None, f"on the CPU already: {problem}"

    if mutant["kind"] == "device":
        findings = device_check.device_findings(mods, parts)
    else:
        findings = device_check.dtype_findings(mods, reference, parts)
    assert findings, f"{mutant['id']} is not shown by the parts of {mutant['question']}"
    functions = _qualnames(source)
    for part, line in findings:
        print(f"{mutant['id']} ({part.question}, {part.label}): {line}")
        assert line.split(":")[0] in functions, f"the message does not start with a function of {mutant['file']}: {line}"
