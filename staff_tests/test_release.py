"""The release: both bundles built by tools/build_release.py, the leak check, and Gradescope simulated here.

The autograder bundle is unpacked as Gradescope lays it out, in a temporary
``AUTOGRADER_ROOT`` (``source/`` = the bundle, ``submission/`` = the student's
upload, ``results/``), ``setup.sh`` runs without installing anything, and
``run_autograder`` grades: the reference uploaded in a folder (full marks), the
stubs loose (zero), a zip with made.py missing (only made.py's questions lose),
and a grader that crashes or hangs (a valid results.json with score 0 all the
same).  Every results.json is checked against Gradescope's schema.  The
student bundle is unpacked and its own grader run on its stubs (hidden tests
show ?/points).  A leak planted in a copy of the repository must fail the build.
"""
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from conftest import ROOT, run, validate_results

BUILD = ROOT / "tools" / "build_release.py"
MODULES = ("autoregressive.py", "made.py", "pixelcnn.py")
STUDENT_TOP_LEVEL = {"src", "submission", "grader.py", "tests", "data", "written", "README.md", "requirements.txt"}
STAFF_WORDS = ("solution/", "hidden_tests", "staff/", "staff_tests", "tools/", "release/", ".ci/",
               "--submission solution")
TIMINGS = {}


@pytest.fixture(scope="module")
def workdir():
    # Not pytest's tmp_path: that is private to root, and the sandbox user must read the bundle.
    path = Path(tempfile.mkdtemp(prefix="ps1-release-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def bundles(workdir):
    out = workdir / "dist"
    started = time.monotonic()
    result = run([sys.executable, BUILD, "--out", out], timeout=600)
    TIMINGS["build_s"] = time.monotonic() - started
    print(result.stdout)
    return SimpleNamespace(out=out, student_zip=out / "student.zip", autograder_zip=out / "autograder.zip",
                           student_dir=out / "student", log=result.stdout)


def extract(archive, target):
    """Unzip like Gradescope and ``unzip`` do: the file modes stored in the zip are applied."""
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            path = target / info.filename
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(zf.read(info))
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                path.chmod(mode)
    for folder in [target, *(p for p in target.rglob("*") if p.is_dir())]:
        folder.chmod(0o755)


def zip_names(archive):
    with zipfile.ZipFile(archive) as zf:
        return [info.filename for info in zf.infolist()]


def coding_tests(manifest):
    return {tid: t for tid, t in manifest["tests"].items() if t["type"] == "coding"}


# -- the bundles ---------------------------------------------------------------------------------------------------
def test_student_bundle_is_exactly_the_student_tree(bundles, manifest):
    names = zip_names(bundles.student_zip)
    assert names == sorted(names), "the zip's entries are not sorted"
    assert {n.split("/", 1)[0] for n in names} == STUDENT_TOP_LEVEL
    for name in names:
        assert not name.startswith(("solution/", "hidden_tests/", "staff/", "staff_tests/", "tools/", "release/")), name
        assert "fixtures/expected" not in name and not name.endswith("expected.pt"), name
        assert "__pycache__" not in name and not name.endswith(".pyc"), name
    # the unpacked copy is the zip
    unpacked = sorted(p.relative_to(bundles.student_dir).as_posix()
                      for p in bundles.student_dir.rglob("*") if p.is_file())
    assert unpacked == names
    with zipfile.ZipFile(bundles.student_zip) as zf:
        for module in MODULES:
            assert zf.read(f"submission/{module}") == (ROOT / "submission" / module).read_bytes(), module
        hidden_runners = sorted(n for n in names if n.startswith("tests/hidden/"))
        assert hidden_runners == sorted(f"tests/hidden/{p.name}" for p in (ROOT / "hidden_tests").glob("*.py"))
        assert any(n.startswith("tests/hidden/test_") for n in hidden_runners), "no hidden test runner shipped"
        for runner in hidden_runners:
            assert zf.read(runner) == (ROOT / "hidden_tests" / runner.rsplit("/", 1)[1]).read_bytes()
        assert "tests/fixtures/public.pt" in names and "tests/points.json" in names
        readme = zf.read("README.md").decode()
    assert readme.startswith("# Problem Set 1"), readme[:200]
    assert "python grader.py" in readme and "python -m src" in readme
    for word in STAFF_WORDS:
        assert word not in readme, f"the student README mentions {word!r}"


def staff_only_names():
    """What the student bundle must never name: staff-only folders, options and documents, and the file name of
    every staff script (tools/ and release/, read from the repository; a .py script also by its module name)."""
    names = ["solution/", "--impl", "hidden_tests", "staff", "tools/", "release/", ".ci/", "answer key",
             "answer-key"]
    for folder in ("tools", "release"):
        for path in sorted((ROOT / folder).iterdir()):
            if path.is_file():
                names += [path.name, path.stem] if path.suffix == ".py" else [path.name]
    return names


HELP_SCRIPT = r"""
import argparse, contextlib, io, json, sys
sys.path.insert(0, ".")
import grader
from src import cli

def shown(call, argv):
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            call(argv)
        except SystemExit:
            pass
    return out.getvalue()

texts = {"python grader.py -h": shown(grader.main, ["-h"]), "python -m src -h": shown(cli.main, ["-h"])}
for action in cli.build_parser()._actions:
    if isinstance(action, argparse._SubParsersAction):
        for command in action.choices:
            texts[f"python -m src {command} -h"] = shown(cli.main, [command, "-h"])
print(json.dumps(texts))
"""


def _text_lines(zip_path):
    """``(name, line number, line)`` of every text file (no NUL byte in its first 8 KB) of a zip."""
    with zipfile.ZipFile(zip_path) as zf:
        for name in zf.namelist():
            payload = zf.read(name)
            if b"\0" not in payload[:8192]:
                for number, line in enumerate(payload.decode("utf-8", errors="replace").splitlines(), 1):
                    yield name, number, line


def test_student_bundle_names_nothing_of_the_staff(bundles):
    """No staff-only name in any text file of the student bundle, nor in any help it prints (grader.py -h,
    python -m src -h and every subcommand's -h, run from the unpacked bundle in one process: about 10 s)."""

    pattern = re.compile("|".join(re.escape(name).replace(r"\ ", r"\s+") for name in staff_only_names()),
                         re.IGNORECASE)
    found = [f"{name}:{number}: {match.group(0)!r} in {line.strip()[:120]!r}"
             for name, number, line in _text_lines(bundles.student_zip) for match in pattern.finditer(line)]
    helps = json.loads(run([sys.executable, "-c", HELP_SCRIPT], cwd=bundles.student_dir, timeout=300).stdout)
    assert len(helps) > 3 and all("usage:" in text for text in helps.values()), helps
    for command, text in helps.items():
        found += [f"{command}: {match.group(0)!r}" for match in pattern.finditer(text)]
    assert not found, "the student bundle names staff-only things:\n  " + "\n  ".join(found)


#: the staff's hardware and set-up, which mean nothing to a student (and times measured there are not theirs)
STAFF_SETUP_WORDS = ("H200", "measuring machine", "CPU seconds", "CPU-seconds", "staff machine", "repository root",
                     "git-ignored", "gitignore")


def test_student_bundle_speaks_of_no_staff_hardware_or_set_up(bundles):
    """No staff hardware or set-up in any text file of the student bundle, and no second implementation
    (``solution``) in its course library outside the grader (src/grading/ says "the reference solution")."""

    pattern = re.compile("|".join(re.escape(word) for word in STAFF_SETUP_WORDS), re.IGNORECASE)
    found = []
    for name, number, line in _text_lines(bundles.student_zip):
        found += [f"{name}:{number}: {match.group(0)!r} in {line.strip()[:120]!r}" for match in pattern.finditer(line)]
        if name.startswith("src/") and not name.startswith("src/grading/") and "solution" in line:
            found.append(f"{name}:{number}: 'solution' in {line.strip()[:120]!r}")
    assert not found, "the student bundle speaks of the staff's machines or set-up:\n  " + "\n  ".join(found)


def test_student_version_drops_staff_blocks():
    sys.path.insert(0, str(ROOT / "tools"))
    import build_release

    text = b"a = 1\n# BEGIN STAFF ONLY\nb = 2\n# END STAFF ONLY\nc = 3\n% BEGIN STAFF ONLY\n% END STAFF ONLY\n"
    assert build_release.student_version("x.py", text) == b"a = 1\nc = 3\n"
    assert build_release.student_version("x.bin", b"\0 BEGIN STAFF ONLY") == b"\0 BEGIN STAFF ONLY"
    for broken in (b"# BEGIN STAFF ONLY\nb = 2\n", b"b = 2\n# END STAFF ONLY\n",
                   b"# BEGIN STAFF ONLY\n# BEGIN STAFF ONLY\n# END STAFF ONLY\n"):
        with pytest.raises(build_release.BuildError, match="x.py:"):
            build_release.student_version("x.py", broken)


def test_autograder_bundle_has_what_gradescope_needs(bundles):
    with zipfile.ZipFile(bundles.autograder_zip) as zf:
        infos = {info.filename: info for info in zf.infolist()}
    for name in ("setup.sh", "run_autograder"):
        assert name in infos, f"{name} must be at the root of autograder.zip"
        assert (infos[name].external_attr >> 16) & 0o111, f"{name} is not executable in the zip"
    assert "hidden_tests/fixtures/expected.pt" in infos
    assert "tests/fixtures/public.pt" in infos and "grader.py" in infos and "collect_submission.py" in infos
    assert any(n.startswith("hidden_tests/test_") for n in infos)
    assert not any(n.startswith(("solution/", "staff/", "staff_tests/", "tests/hidden/", "submission/")) for n in infos)
    assert (ROOT / "hidden_tests" / "fixtures" / "expected.pt").read_bytes() == \
        zipfile.ZipFile(bundles.autograder_zip).read("hidden_tests/fixtures/expected.pt")


def test_trained_checkpoints_stay_out_of_both_bundles(bundles):
    """staff/checkpoints/*.pt (tens of MB of the reference's trained weights) ship in neither zip, under any name."""
    checkpoints = {hashlib.sha256(p.read_bytes()).hexdigest(): p.name
                   for p in (ROOT / "staff" / "checkpoints").glob("*.pt")}
    for archive in (bundles.student_zip, bundles.autograder_zip):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                assert not info.filename.startswith("staff/"), f"{archive.name}: {info.filename}"
                if info.file_size > 1_000_000:  # every checkpoint is bigger than that
                    digest = hashlib.sha256(zf.read(info)).hexdigest()
                    assert digest not in checkpoints, f"{archive.name}: {info.filename} is {checkpoints[digest]}"


def test_zips_are_deterministic(bundles, workdir):
    again = workdir / "dist-again"
    run([sys.executable, BUILD, "--out", again], timeout=600)
    for name in ("student.zip", "autograder.zip"):
        first, second = (bundles.out / name).read_bytes(), (again / name).read_bytes()
        assert hashlib.sha256(first).digest() == hashlib.sha256(second).digest(), f"{name} differs between builds"
        with zipfile.ZipFile(io.BytesIO(first)) as zf:
            assert {info.date_time for info in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    TIMINGS["student_zip_mb"] = (bundles.out / "student.zip").stat().st_size / 1e6
    TIMINGS["autograder_zip_mb"] = (bundles.out / "autograder.zip").stat().st_size / 1e6


def test_bundled_code_parses_as_python_3_10(bundles):
    """Gradescope's Ubuntu 22.04 image has Python 3.10: no newer syntax in what runs there or ships."""
    import ast

    for archive in (bundles.student_zip, bundles.autograder_zip):
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                if name.endswith(".py"):
                    try:
                        ast.parse(zf.read(name), filename=name, feature_version=(3, 10))
                    except SyntaxError as error:
                        pytest.fail(f"{archive.name}:{name}:{error.lineno}: not Python 3.10 syntax ({error.msg})")


def test_readme_and_ci_agree_on_the_commands():
    readme = (ROOT / "README.md").read_text().splitlines()
    first_block = readme[readme.index("```bash") + 1:]
    first_block = first_block[:first_block.index("```")]
    assert first_block == ["pip install -r requirements.txt", "python -m pytest staff_tests"], first_block
    assert readme.index("```bash") < 5, "the two commands must come first in README.md"
    ci = (ROOT / ".ci" / "run").read_text()
    assert "\npython -m pytest staff_tests\n" in ci and "pip install --quiet -r requirements.txt" in ci


def _requirement(lines, name, staff):
    """The specifier of ``name`` in requirements.txt, in the staff-only block or outside it."""
    inside, found = False, []
    for line in lines:
        inside = (inside or "BEGIN STAFF ONLY" in line) and "END STAFF ONLY" not in line
        text = line.split("#")[0].strip()
        if inside == staff and re.fullmatch(rf"{name}\s*[<>=!~].*", text):
            found.append(text[len(name):].strip())
    assert len(found) == 1, f"expected one {name} line {'inside' if staff else 'outside'} the staff block: {found}"
    return found[0]


def test_torch_range_covers_the_recorded_and_the_autograder_torch():
    """Students get a range of torch (tested at its ends: README, "On a GPU machine or Colab"); the staff
    pin is the torch the fixtures were recorded with, and the Gradescope bundle's torch lies in the range."""
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    lines = (ROOT / "requirements.txt").read_text().splitlines()
    torch_range = SpecifierSet(_requirement(lines, "torch", staff=False))
    vision_range = SpecifierSet(_requirement(lines, "torchvision", staff=False))
    staff_pin = _requirement(lines, "torch", staff=True)
    assert staff_pin.startswith("==")
    recorded = {torch.load(path, weights_only=True)["_meta"]["torch_version"].split("+")[0]
                for path in (ROOT / "tests" / "fixtures" / "public.pt", ROOT / "hidden_tests" / "fixtures" / "expected.pt")}
    assert recorded == {staff_pin[2:]}, f"fixtures recorded with torch {recorded}, staff pin {staff_pin}"
    setup = (ROOT / "release" / "setup.sh").read_text()
    autograder_torch = re.search(r'PS1_TORCH_VERSION:-([0-9.]+)\}', setup).group(1)
    ends = sorted(Version(s.version) for s in torch_range if s.operator in (">=", "<="))
    assert len(ends) == 2, f"the torch range must have two tested ends (>= and <=): {torch_range}"
    for version in (staff_pin[2:], autograder_torch):
        assert version in torch_range, f"torch {version} is outside requirements.txt's range {torch_range}"
    # torchvision 0.(N+15) goes with torch 2.N (0.29.x accepts torch >= 2.14)
    low, high = (Version(s.version) for s in sorted(vision_range, key=lambda s: s.operator != ">="))
    assert (low.minor, high.minor) == (ends[0].minor + 15, ends[1].minor + 14), (torch_range, vision_range)
    assert _requirement(lines, "torchvision", staff=True)[2:] in vision_range
    readme = (ROOT / "README.md").read_text()
    for version in ends:
        assert f"torch {version}" in readme, f"README does not say that torch {version} was tested"


# -- the leak check ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def repo_copy(workdir):
    """A copy of the working tree (what git sees, plus release/), with a git repository of its own."""
    sys.path.insert(0, str(ROOT / "tools"))
    import build_release

    copy = workdir / "repo"
    for rel in build_release.working_tree_files(ROOT):
        (copy / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, copy / rel)
    for folder in ("release", "tools"):
        shutil.copytree(ROOT / folder, copy / folder, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    subprocess.run(["git", "init", "-q"], cwd=copy, check=True)
    return copy


def _solution_function(module, name):
    import ast

    source = (ROOT / "solution" / module).read_text()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return ast.get_source_segment(source, node)
    raise AssertionError(f"no function {name} in solution/{module}")


def _plant_function(copy):
    body = _solution_function("made.py", "made_masks").replace("def made_masks", "def _helper_masks")
    path = copy / "src" / "helpers_planted.py"
    path.write_text('"""A helper."""\nimport torch\n\n\n' + body + "\n")
    return path, "src/helpers_planted.py"


def _plant_renamed_loop(copy):
    import textwrap

    source = (ROOT / "solution" / "pixelcnn.py").read_text()
    start = source.index("        for i in range(H):")
    loop = textwrap.dedent(source[start:source.index("        return x\n", start)])
    loop = loop.replace("probs", "p_values").replace("generator=generator", "generator=gen")
    path = copy / "tests" / "test_planted.py"
    path.write_text("def make(self, x, H, W, gen):\n" + textwrap.indent(loop, "    ") + "    return x\n")
    return path, "tests/test_planted.py"


def _plant_text(copy):
    source = (ROOT / "solution" / "made.py").read_text()
    line = next(text.strip() for text in source.splitlines() if "torch.bernoulli(probs, generator=generator)" in text)
    path = copy / "written" / "answers" / "2d.tex"
    path.write_text(path.read_text() + f"\n% hint: \\verb|{line}|\n")
    return path, "written/answers/2d.tex"


def _plant_hidden_values(copy):
    import torch

    values = torch.load(ROOT / "hidden_tests" / "fixtures" / "expected.pt", weights_only=True)
    large = {k.replace("-hidden", "-extra"): v for k, v in values.items()
             if isinstance(v, torch.Tensor) and v.numel() >= 4}
    # under other keys the values themselves must be recognised; without large tensors, the keys
    values = large or {k: v for k, v in values.items() if k != "_meta"}
    path = copy / "tests" / "fixtures" / "extra.pt"
    torch.save(values, path)
    return path, "tests/fixtures/extra.pt"


def _plant_answer_key(copy):
    key = sorted((ROOT / "staff" / "written_key" / "answers").glob("*.tex"))[0]
    path = copy / "written" / "answers" / key.name
    path.write_text(key.read_text())
    return path, f"written/answers/{key.name}"


def _plant_formula(copy):
    """1b's answer, a formula that only the files of DOCSTRING_FORMULAS may compute, in a probe file."""
    path = copy / "src" / "grading" / "worker" / "probes" / "q1.py"
    path.write_text(path.read_text() + "\n\ndef _bits(nll, num_dims):\n    return nll / (num_dims * math.log(2.0))\n")
    return path, "src/grading/worker/probes/q1.py"


PLANTS = (_plant_function, _plant_renamed_loop, _plant_text, _plant_hidden_values, _plant_answer_key, _plant_formula)


def test_build_fails_on_planted_leaks(repo_copy, workdir):
    """Six leaks planted in a copy at once; the build must fail and name every one of them."""
    planted = {plant.__name__.removeprefix("_plant_"): plant(repo_copy)[1] for plant in PLANTS}
    result = run([sys.executable, repo_copy / "tools" / "build_release.py", "--out", workdir / "dist-leak"],
                 cwd=repo_copy, check=False, timeout=600)
    assert result.returncode == 1, f"the build did not fail:\n{result.stdout}\n{result.stderr}"
    assert "leaks" in result.stderr
    missed = {kind: arcname for kind, arcname in planted.items() if arcname not in result.stderr}
    assert not missed, f"the leak check missed {missed}:\n{result.stderr}"
    assert not (workdir / "dist-leak" / "student.zip").exists(), "a failed build wrote a bundle"


# -- Gradescope, simulated --------------------------------------------------------------------------------------------
def gradescope(bundles, workdir, name, upload, env=None, replace_grader=None):
    """Lay out an AUTOGRADER_ROOT, run setup.sh and run_autograder; return (results, output, seconds)."""
    root = workdir / f"autograder-{name}"
    for folder in ("source", "submission", "results"):
        (root / folder).mkdir(parents=True)
    root.chmod(0o755)
    extract(bundles.autograder_zip, root / "source")
    if replace_grader is not None:
        (root / "source" / "grader.py").write_text(replace_grader)
    upload(root / "submission")
    environment = {"AUTOGRADER_ROOT": str(root), "PS1_PYTHON": sys.executable, "PS1_SKIP_INSTALL": "1",
                   **(env or {})}
    run([root / "source" / "setup.sh"], cwd=root / "source", env=environment, timeout=300)
    started = time.monotonic()
    result = run([root / "source" / "run_autograder"], cwd=root, env=environment, timeout=900)
    seconds = time.monotonic() - started
    results_path = root / "results" / "results.json"
    assert results_path.is_file(), f"run_autograder left no results.json:\n{result.stdout[-3000:]}"
    results = validate_results(json.loads(results_path.read_text()))
    return results, result.stdout + result.stderr, seconds


def copy_files(source_dir, target_dir, names=MODULES):
    target_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(source_dir / name, target_dir / name)


def scores_by_test(results):
    return {test["number"]: (test["score"], test["max_score"]) for test in results["tests"]}


def test_gradescope_reference_in_a_nested_folder_gets_full_marks(bundles, workdir, manifest):
    def upload(folder):
        copy_files(ROOT / "solution", folder / "My Submission" / "ps1")
        (folder / "__MACOSX" / "My Submission" / "ps1").mkdir(parents=True)
        (folder / "__MACOSX" / "My Submission" / "ps1" / "._made.py").write_bytes(b"\0\5\26\7 junk")
        (folder / "notes.txt").write_text("not graded")

    results, output, seconds = gradescope(bundles, workdir, "reference", upload)
    TIMINGS["gradescope_reference_s"] = seconds
    coding = coding_tests(manifest)
    full = sum(t["points"] for t in coding.values())
    regular = sum(t["points"] for t in coding.values() if not t["extra_credit"])
    assert (regular, full) == (28, 30), "the manifest's coding points changed: update this test and the README"
    scores = scores_by_test(results)
    assert set(scores) == set(coding), f"results.json lists other tests: {sorted(set(scores) ^ set(coding))}"
    lost = {tid: s for tid, s in scores.items() if s[0] != s[1]}
    assert not lost, f"the reference lost points on Gradescope: {lost}\n{output[-4000:]}"
    assert results["score"] == pytest.approx(full)
    assert "My Submission/ps1/made.py" in results["output"]


def test_gradescope_stubs_score_zero(bundles, workdir, manifest):
    results, output, seconds = gradescope(bundles, workdir, "stubs",
                                          lambda folder: copy_files(ROOT / "submission", folder))
    TIMINGS["gradescope_stubs_s"] = seconds
    scores = scores_by_test(results)
    assert set(scores) == set(coding_tests(manifest))
    assert results["score"] == 0
    assert all(score == 0 for score, _ in scores.values()), scores


def test_gradescope_zip_with_a_missing_file_loses_only_that_files_questions(bundles, workdir, manifest):
    def upload(folder):
        with zipfile.ZipFile(folder / "ps1 submission.zip", "w") as zf:
            for name in ("autoregressive.py", "pixelcnn.py"):
                zf.write(ROOT / "solution" / name, f"ps1/{name}")
            zf.writestr("__MACOSX/ps1/._autoregressive.py", b"\0junk")

    results, output, seconds = gradescope(bundles, workdir, "missing-made", upload)
    TIMINGS["gradescope_missing_s"] = seconds
    questions = manifest["questions"]
    for test_id, (score, max_score) in scores_by_test(results).items():
        if questions[manifest["tests"][test_id]["question"]]["file"] == "made.py":
            assert score == 0, f"{test_id} scored without made.py"
        else:
            assert score == max_score, f"{test_id} lost points because made.py is missing:\n{output[-3000:]}"
    assert "made.py: NOT FOUND" in results["output"]
    assert "ps1 submission.zip/ps1/pixelcnn.py" in results["output"]


@pytest.mark.parametrize("failure", ["crash", "hang"])
def test_gradescope_always_leaves_results(bundles, workdir, manifest, failure):
    broken = {"crash": "import os\nprint('about to crash')\nos._exit(3)\n",
              "hang": "import time\ntime.sleep(600)\n"}[failure]
    env = {"PS1_GRADER_TIMEOUT": "3"} if failure == "hang" else {}
    results, output, seconds = gradescope(bundles, workdir, f"broken-{failure}",
                                          lambda folder: copy_files(ROOT / "solution", folder),
                                          env=env, replace_grader=broken)
    assert results["score"] == 0
    assert "autograder failed" in results["output"]
    assert {t["number"] for t in results["tests"]} == set(coding_tests(manifest))
    assert seconds < 120


# -- the collector alone --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def collector(bundles):
    spec_dir = bundles.out / "collector"
    extract(bundles.autograder_zip, spec_dir)
    sys.path.insert(0, str(spec_dir))
    import collect_submission

    yield collect_submission
    sys.path.remove(str(spec_dir))


def _write(folder, relative, text="x = 1\n"):
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize("layout, expected", [
    ({"made.py": 1, "pixelcnn.py": 1, "autoregressive.py": 1}, ["made.py", "pixelcnn.py", "autoregressive.py"]),
    ({"a/b/c/made.py": 1, "a/b/c/pixelcnn.py": 1, "a/b/c/autoregressive.py": 1},
     ["a/b/c/made.py", "a/b/c/pixelcnn.py", "a/b/c/autoregressive.py"]),
    # the folder holding most of the files wins over a shallower stray copy
    ({"old/made.py": 1, "ps1/made.py": 1, "ps1/pixelcnn.py": 1, "ps1/autoregressive.py": 1},
     ["ps1/made.py", "ps1/pixelcnn.py", "ps1/autoregressive.py"]),
    # a file missing there comes from elsewhere
    ({"ps1/made.py": 1, "ps1/pixelcnn.py": 1, "extra/autoregressive.py": 1},
     ["ps1/made.py", "ps1/pixelcnn.py", "extra/autoregressive.py"]),
    ({"Made.py": 1, "__MACOSX/._made.py": 1, "._pixelcnn.py": 1}, ["Made.py", None, None]),
])
def test_collector_finds_files_in_folders(collector, tmp_path, layout, expected):
    upload = tmp_path / "upload"
    for relative in layout:
        _write(upload, relative, f"# {relative}\n")
    target = tmp_path / "target"
    chosen = collector.collect(upload, target)
    for name, shown in zip(("made.py", "pixelcnn.py", "autoregressive.py"), expected):
        if shown is None:
            assert name not in chosen and not (target / name).exists()
        else:
            assert chosen[name].shown == shown
            assert (target / name).read_text() == f"# {shown}\n"


def test_collector_opens_zips_safely(collector, tmp_path):
    upload = tmp_path / "upload"
    (upload / "inner").mkdir(parents=True)
    with zipfile.ZipFile(upload / "inner" / "work.zip", "w") as zf:
        zf.writestr("hw/made.py", "# made\n")
        zf.writestr("hw/pixelcnn.py", "# pixelcnn\n")
        zf.writestr("../../escape/autoregressive.py", "# escaped\n")
        zf.writestr("/abs/autoregressive.py", "# absolute\n")
        zf.writestr("__MACOSX/hw/._made.py", "junk")
    (upload / "broken.zip").write_bytes(b"PK not really a zip")
    target = tmp_path / "target"
    chosen = collector.collect(upload, target, tmp_path / "notes.txt")
    assert (target / "made.py").read_text() == "# made\n"
    assert (target / "pixelcnn.py").read_text() == "# pixelcnn\n"
    assert "autoregressive.py" not in chosen
    assert not (tmp_path / "escape").exists()
    notes = (tmp_path / "notes.txt").read_text()
    assert "inner/work.zip/hw/made.py" in notes and "broken.zip" in notes and "autoregressive.py: NOT FOUND" in notes


def test_collector_finish_keeps_good_results_and_replaces_bad_ones(collector, tmp_path):
    results = tmp_path / "results.json"
    notes = tmp_path / "notes.txt"
    notes.write_text("made.py: graded the file made.py\n")
    good = {"score": 3.0, "output": "totals", "tests": [{"name": "t", "score": 3.0, "max_score": 3.0}]}
    results.write_text(json.dumps(good))
    assert collector.finish(results, notes)
    kept = validate_results(json.loads(results.read_text()))
    assert kept["score"] == 3.0 and kept["output"].startswith("Files graded:\nmade.py") and "totals" in kept["output"]
    for bad in ("", "{not json", json.dumps({"score": 5})):
        results.write_text(bad)
        assert not collector.finish(results, notes, manifest_path=ROOT / "tests" / "points.json")
        replaced = validate_results(json.loads(results.read_text()))
        assert replaced["score"] == 0 and replaced["tests"]


# -- the student bundle on its own -------------------------------------------------------------------------------------
def test_student_bundle_grades_its_stubs(bundles, workdir, manifest):
    student = workdir / "student-stubs"
    extract(bundles.student_zip, student)
    assert not (student / "hidden_tests").exists()
    results_path = student / "results.json"
    started = time.monotonic()
    result = run([sys.executable, "grader.py", "--results", results_path], cwd=student, timeout=600)
    TIMINGS["student_grader_stubs_s"] = time.monotonic() - started
    results = validate_results(json.loads(results_path.read_text()))
    assert results["score"] == 0
    assert {t["number"] for t in results["tests"]} == set(coding_tests(manifest)), result.stdout[-3000:]
    # a stub's hidden test fails visibly (its crash shows); it never passes
    assert all(t["score"] == 0 for t in results["tests"])


def test_student_bundle_mistakes_are_one_line_and_exit_2(bundles, workdir):
    """From the unpacked bundle, as a student types it: a --submission folder that does not exist, and a
    syntax error in their made.py met by the library, each give a few lines without a traceback, exit 2."""
    student = workdir / "student-mistakes"
    extract(bundles.student_zip, student)
    missing = run([sys.executable, "grader.py", "--submission", "nowhere"], cwd=student, check=False)
    assert missing.returncode == 2 and missing.stdout == "", missing
    assert missing.stderr.strip().splitlines() == ["grader.py: --submission nowhere: no such folder"], missing
    made = student / "submission" / "made.py"
    made.write_text(made.read_text().replace("def made_degrees(order, hidden_sizes, generator=None):",
                                             "def made_degrees(order, hidden_sizes, generator=None:", 1))
    broken = run([sys.executable, "-m", "src", "train", "made"], cwd=student, check=False, timeout=300)
    lines = (broken.stdout + broken.stderr).strip().splitlines()
    assert broken.returncode == 2 and len(lines) <= 3 and "Traceback" not in broken.stderr, broken
    with pytest.raises(SyntaxError) as error:
        compile(made.read_text(), str(made), "exec")
    assert lines[0].endswith(f"submission/made.py, line {error.value.lineno}: {error.value.msg}"), lines


def test_student_bundle_shows_hidden_points_as_unknown(bundles, workdir, manifest):
    """The reference in the students' copy: public tests pass, hidden ones run but score ?."""
    student = workdir / "student-reference"
    extract(bundles.student_zip, student)
    copy_files(ROOT / "solution", student / "submission")
    results_path = student / "results.json"
    questions = ["1a", "2a", "3a"]
    result = run([sys.executable, "grader.py", *questions, "--results", results_path], cwd=student, timeout=600)
    assert "ran without crashing; scored on Gradescope" in result.stdout, result.stdout[-3000:]
    results = validate_results(json.loads(results_path.read_text()))
    selected = {tid for tid, t in coding_tests(manifest).items() if t["question"] in questions}
    scores = scores_by_test(results)
    assert set(scores) == selected
    for test_id, (score, max_score) in scores.items():
        if test_id.endswith("-hidden"):
            assert score == 0, f"{test_id}: a hidden test scored without its expected values"
        else:
            assert score == max_score, f"{test_id}: the reference failed a public test in the students' copy"
    hidden_lines = [line for line in result.stdout.splitlines() if "-hidden" in line and line.lstrip().startswith("[")]
    assert hidden_lines and all("?/" in line for line in hidden_lines), "\n".join(hidden_lines)


def test_report_timings():
    """Not a check: prints the figures measured above (run with -s to see them)."""
    print("\nrelease figures: " + ", ".join(f"{k} = {v:.1f}" for k, v in sorted(TIMINGS.items())))
