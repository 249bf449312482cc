"""A grader uses only its own checkout's code (issue 19, point 6).

Once, with graders running side by side in separate checkouts, a grade ended "GRADER PROBLEM ... No module named
'src.grading.reference'".  grader.py used the package ``src`` that its process had already imported, from
whichever checkout that was (it put its own checkout on ``sys.path`` only in ``main``, after its first ``src``
import, and too late to matter once ``src`` was loaded): with grader.py of before this test, the third test below
ends in exactly that message ("No module named 'src.grading.host.reference'").  Here checkout A
(intact) grades with tests and a submission from checkout B, whose ``src`` is broken (its reference store is
gone and importing its package ``src`` raises); B's staff_tests/conftest.py, which pytest loads for B's suite,
puts B first on ``sys.path``, and so does PYTHONPATH.
"""
import shutil
import sys

from conftest import ROOT, run

SELECT = ["1a-0-basic", "1b-0-basic"]  # public tests of the grader's own suite: no hidden expected values needed
POISON = 'import os\nif os.environ.get("POISON_B"):\n    raise ImportError("checkout B\'s src was imported")\n'
STRAY = '''"""A test file that imports a module of its own checkout's src (which it must not)."""
import importlib.util
import sys
from pathlib import Path

from src.grading.host.graded import graded

here = Path(__file__).resolve().parent
spec = importlib.util.spec_from_file_location("src.grading.stray", here / "src" / "grading" / "paths.py")
sys.modules[spec.name] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sys.modules[spec.name])


@graded("1a-0-basic")
def test_stray(student):
    pass
'''


def _checkout(folder):
    """The parts of the repository that a grade from ``folder`` needs, ``folder`` itself readable by all."""
    ignore = shutil.ignore_patterns("__pycache__")
    folder.mkdir()
    shutil.copy(ROOT / "grader.py", folder / "grader.py")
    for name in ("src", "solution", "staff_tests/grader_suite"):
        shutil.copytree(ROOT / name, folder / name, ignore=ignore)
    shutil.copy(ROOT / "staff_tests" / "conftest.py", folder / "staff_tests" / "conftest.py")
    (folder / "tests").mkdir()
    shutil.copy(ROOT / "tests" / "points.json", folder / "tests" / "points.json")
    return folder


def _checkouts(tmp_path):
    tmp_path.chmod(0o755)
    a, b = _checkout(tmp_path / "A"), _checkout(tmp_path / "B")
    (b / "src" / "grading" / "host" / "reference.py").unlink()  # B mid-edit: the module moves
    init = b / "src" / "__init__.py"
    init.write_text(POISON + init.read_text())
    return a, b


def _grade(a, *args):
    return run([sys.executable, a / "grader.py", *args], cwd=a, check=False, timeout=300,
               env={"PYTHONPATH": str(a.parent / "B"), "POISON_B": "1", "PYTHONDONTWRITEBYTECODE": "1"})


def test_grade_uses_only_its_own_checkout(tmp_path):
    a, b = _checkouts(tmp_path)
    done = _grade(a, *SELECT, "--tests", b / "staff_tests" / "grader_suite" / "suite_basic.py",
                  "--submission", b / "solution")
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "GRADER PROBLEM" not in output and "checkout B" not in output, output
    assert "Autograded:          1 / 1" in output, output


def test_another_checkouts_module_is_a_grader_problem(tmp_path):
    """A test file that loads a module of another checkout's src: the grade says so (never a silent mix)."""
    a, b = _checkouts(tmp_path)
    (b / "suite_stray.py").write_text(STRAY)
    done = _grade(a, "1a-0-basic", "--tests", b / "suite_stray.py", "--submission", b / "solution")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "GRADER PROBLEM (not your code): the grader of" in done.stdout, done.stdout
    assert f"used code of another checkout: src.grading.stray ({b / 'src' / 'grading' / 'paths.py'})" in \
        done.stdout.replace("\n    ", " "), done.stdout


def test_grader_refuses_a_process_with_another_src(tmp_path):
    """grader.py loaded into a process that already imported another checkout's src stops with a clear message."""
    a, b = _checkouts(tmp_path)
    code = (f"import sys, runpy; sys.path.insert(0, {str(b)!r}); import src; sys.argv = ['grader.py', '1a-0-basic', '--submission', {str(b / 'solution')!r}]; "
            f"runpy.run_path({str(a / 'grader.py')!r}, run_name='__main__')")
    done = run([sys.executable, "-c", code], cwd=tmp_path, check=False, timeout=120)
    assert done.returncode != 0
    assert f"grader.py of {a} found the package src already imported from {b / 'src' / '__init__.py'}" in \
        done.stderr, done.stderr
