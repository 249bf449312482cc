"""Staff tests of the feedback a debugging student gets (issue 17): their own prints, messages that point at
the bug, points in proportion, cross-file imports graded from the graded folder.

Two grades of planted bugs (copies of solution/ with exact edits), each of a few questions:

* ``proportion``: PixelCNN.forward scales its input to [-1, 1] instead of calling preprocess (3b), and
  MaskedLinear.forward masks the weight in place, ``self.weight.data *= self.mask`` (2a);
* ``debugging``: nll_to_bits_per_dim prints 101 lines per call and returns a wrong value (1b); made.py imports
  ``from submission.autoregressive import ...`` in MADE.log_prob (2b) and its MaskedLinear.forward uses
  ``self.weight.data`` (2a, 4b); PixelCNN.forward adds the image's mean to every logit (3b-2: not
  autoregressive).

The 200 MB output attack is in test_grader_hostile.py (``functions``), which also checks the capped output.
"""
import json
import shutil
import sys

import pytest
from conftest import ROOT, run, validate_results

SOLUTION = ROOT / "solution"

EDITS = {
    "proportion": [
        ("pixelcnn.py", "h = preprocess(x, self.num_levels, self.input_conv.weight.dtype)",
         "h = x.to(self.input_conv.weight.dtype) / (self.num_levels - 1) * 2 - 1"),
        ("made.py", "return F.linear(x, self.mask * self.weight, self.bias)",
         "self.weight.data *= self.mask\n        return F.linear(x, self.weight, self.bias)"),
    ],
    "debugging": [
        ("autoregressive.py", "    return nll / (num_dims * math.log(2.0))\n",
         "    for i in range(100):\n        print('debug line', i, num_dims)\n    import sys\n"
         "    print('to stderr', file=sys.stderr)\n    return nll / (num_dims * math.log(10.0))\n"),
        ("made.py", "import torch.nn.functional as F\n",
         "import torch.nn.functional as F\n\nfrom submission.autoregressive import bernoulli_log_likelihood\n"),
        ("made.py", '                log_p = -F.binary_cross_entropy_with_logits(self(x), x, reduction="none").sum(dim=1)\n',
         "                log_p = bernoulli_log_likelihood(x, self(x))\n"),
        ("made.py", "return F.linear(x, self.mask * self.weight, self.bias)",
         "return F.linear(x, self.mask * self.weight.data, self.bias)"),
        ("pixelcnn.py", "h = self.blocks(self.input_conv(h))",
         "h = self.blocks(self.input_conv(h)) + h.mean(dim=(1, 2, 3), keepdim=True)"),
    ],
}
SELECTIONS = {"proportion": ["2a", "3b"],
              "debugging": ["1b-0-basic", "2a-0-basic", "2b-0-basic", "4b-0-basic", "3b-2-hidden"]}


def _planted(name, folder):
    shutil.copytree(SOLUTION, folder, ignore=shutil.ignore_patterns("__pycache__"))
    for file, find, replace in EDITS[name]:
        text = (folder / file).read_text()
        assert text.count(find) == 1, (name, file, find)
        (folder / file).write_text(text.replace(find, replace))
    return folder


@pytest.fixture(scope="module")
def grades(tmp_path_factory):
    """{name: (grader's stdout, {test id: results.json entry})} for both planted submissions."""
    work = tmp_path_factory.mktemp("feedback")
    done = {}
    for name, selection in SELECTIONS.items():
        folder = _planted(name, work / name / "submission")
        results = work / name / "results.json"
        completed = run([sys.executable, "grader.py", *selection, "--submission", folder, "--results", results],
                        timeout=600)
        data = validate_results(json.loads(results.read_text()))
        done[name] = completed.stdout, {test["number"]: test for test in data["tests"]}
    return done


def _parts(test):
    return {part["name"]: part["earned"] for part in test.get("extra_data", {}).get("parts", [])}


def test_wrong_values_cost_only_value_parts(grades):
    """Point 3: an input scaled to [-1, 1] keeps PixelCNN autoregressive and normalised: only the value parts of
    forward and log_prob are lost (was 2.75 of 3), and the public test's device part, which needs log_prob's
    values; in 2a the buffer parts, independent of the gradient, are credited though forward's gradient is
    wrong."""
    _, tests = grades["proportion"]
    assert {t: tests[t]["score"] for t in ("3b-0-basic", "3b-1-hidden", "3b-2-hidden")} == {
        "3b-0-basic": 0.4, "3b-1-hidden": 0.5, "3b-2-hidden": 1.0}, tests
    for test_id, device_part in (("3b-0-basic", {"PixelCNN.forward, log_prob on another device"}),
                                 ("3b-1-hidden", set())):
        lost = {name for name, earned in _parts(tests[test_id]).items() if earned == 0}
        assert lost == {"PixelCNN.forward", "PixelCNN.log_prob"} | device_part, (test_id, tests[test_id])
    assert _parts(tests["2a-0-basic"])["MaskedLinear: the mask buffer"] == 0.25, tests["2a-0-basic"]
    assert _parts(tests["2a-1-hidden"])["MaskedLinear: the mask buffer (other shapes, bias=False)"] == 0.15
    assert _parts(tests["2a-1-hidden"])["MaskedLinear: the mask is saved in and loaded from the state_dict"] == 0.1


def test_messages_say_what_is_wrong(grades):
    """Point 2: in-place masking is named as such; a part that depends on a failed one says which; a learning
    test that fails says what earlier tests of the grade found, naming the function."""
    _, tests = grades["proportion"]
    for test_id in ("2a-0-basic", "2a-1-hidden"):
        output = tests[test_id]["output"]
        assert "forward changed self.weight itself" in output and "lost for every later mask set" in output, output
        assert "multiply the weight by the mask inside forward" not in output, output
    _, tests = grades["debugging"]
    structure = tests["3b-2-hidden"]["output"]
    assert "raised an error" not in structure, structure
    assert "'only earlier pixels are seen', which failed" in structure, structure
    learning = tests["4b-0-basic"]["output"]
    assert tests["4b-0-basic"]["score"] == 0, learning
    assert "Other tests of this grade found problems in the code this training uses" in learning, learning
    assert "- 2a-0-basic: " in learning and "MaskedLinear.forward" in learning, learning
    assert "no gradient with respect to self.weight" in tests["2a-0-basic"]["output"], tests["2a-0-basic"]


def test_students_prints_shown_capped_under_a_failing_public_test(grades):
    """Point 1: 202 printed lines (stdout and stderr) of a failing public test: the first 40 lines, labelled,
    then how many more; nowhere for a test that passed."""
    stdout, tests = grades["debugging"]
    output = tests["1b-0-basic"]["output"]
    assert tests["1b-0-basic"]["score"] == 0, output
    assert "what your code printed during this test (its stdout and stderr):" in output, output
    shown = [line for line in output.splitlines() if line.startswith("| debug line")]
    assert shown[0] == "| debug line 0 784" and len(shown) == 40, output
    assert "| ... 162 more lines" in output, output  # 2 calls x (100 + 1 lines) - 40
    assert "printed" not in tests["2b-0-basic"].get("output", ""), tests["2b-0-basic"]
    assert stdout.count("debug line") == 40, stdout  # the report shows the same 40 lines, and nothing else does


def test_cross_file_import_graded_from_the_graded_folder(grades):
    """Point 4: made.py's ``from submission.autoregressive import bernoulli_log_likelihood`` uses the graded
    folder's autoregressive.py (correct), not the stub in the bundle's submission/ (which raises)."""
    _, tests = grades["debugging"]
    assert tests["2b-0-basic"]["score"] == 1.0, tests["2b-0-basic"]
