"""Build the two bundles of the problem set: what students download and what Gradescope runs.

    python tools/build_release.py --out DIR

writes

* ``DIR/student.zip`` and the same tree unpacked in ``DIR/student/``: ``src/``,
  ``submission/`` (the stubs), ``grader.py``, the public ``tests/`` with the
  hidden tests' runner files as ``tests/hidden/test_*.py`` (their expected
  values stay behind), ``data/``, ``written/`` (the templates), the student
  README (the student section of the top-level README.md) and
  ``requirements.txt``;
  Every text file of the student bundle is its student version: the lines
  from a ``BEGIN STAFF ONLY`` marker to the next ``END STAFF ONLY`` marker
  (in a comment of any language: ``#``, ``%``, ``<!-- -->``) are left out, so
  that the bundle names nothing it does not contain (the staff's options of
  grader.py, the paths of hidden_tests/, the staff's scripts);
* ``DIR/autograder.zip``: ``setup.sh`` and ``run_autograder`` at the root (as
  Gradescope requires), ``collect_submission.py``, ``requirements-autograder.txt``
  and what grading needs: ``src/``, ``grader.py``, ``tests/``, ``hidden_tests/``
  with its fixtures.

Files are taken from the working tree as git sees it (tracked and untracked,
minus what .gitignore ignores: build products, decompressed MNIST, caches).
The zips are deterministic: sorted entries, fixed timestamps, fixed modes.

The build fails, writing nothing, when the student bundle would leak anything
(``LeakChecker``): staff-only folders or files, the hidden expected values, the
answer key, or the code of the reference's ``### START CODE HERE ###`` regions
(found by comparing syntax trees of every .py file with the regions'
statements, and by looking for the regions' source lines in every text file).

    python tools/build_release.py --out dist --check   # only check, write nothing
"""
import argparse
import ast
import fnmatch
import hashlib
import io
import re
import shutil
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from make_stubs import MODULES, make_stub, marked_regions  # noqa: E402

# -- what goes where ---------------------------------------------------------
STUDENT_DIRS = ("src", "submission", "tests", "data", "written")
STUDENT_FILES = ("grader.py", "requirements.txt")  # README.md is generated
AUTOGRADER_DIRS = ("src", "tests", "hidden_tests")
AUTOGRADER_FILES = ("grader.py",)
RELEASE_DIR = ROOT / "release"
AUTOGRADER_TEMPLATES = {  # arcname in autograder.zip -> file in release/, executable?
    "setup.sh": ("setup.sh", True),
    "run_autograder": ("run_autograder", True),
    "collect_submission.py": ("collect_submission.py", False),
    "requirements-autograder.txt": ("requirements-autograder.txt", False),
}
HIDDEN_DIR = "hidden_tests"
HIDDEN_FIXTURES_DIR = "hidden_tests/fixtures"
HIDDEN_IN_STUDENT_BUNDLE = "tests/hidden"
REQUIRED_STUDENT = ("grader.py", "requirements.txt", "README.md", "tests/points.json",
                    "src/grading/__init__.py") + tuple(f"submission/{m}" for m in MODULES)
REQUIRED_AUTOGRADER = ("setup.sh", "run_autograder", "grader.py", "tests/points.json",
                       "hidden_tests/fixtures/expected.pt", "src/grading/__init__.py")
STUDENT_EXCLUDED = ("src/grading/worker/probes/selftest_probes.py",)  # the probes of the grader's own test suite (staff_tests/)
STAFF_BEGIN, STAFF_END = "BEGIN STAFF ONLY", "END STAFF ONLY"  # staff-only lines of a shipped file
STAFF_ONLY = ("solution/", "hidden_tests/", "staff/", "staff_tests/", "tools/", "release/", ".ci/", ".git/")
ALWAYS_EXCLUDED = ("__pycache__", "*.pyc", "*.pyo", ".pytest_cache", ".DS_Store", ".ipynb_checkpoints", "*.swp", "*~",
                   "*.tmp")
# Used only where git is unavailable; mirrors .gitignore for the folders that ship.
FALLBACK_EXCLUDED = ("data/MNIST/raw/*-ubyte", "written/main.pdf", "*.aux", "*.log", "*.fls",
                     "*.fdb_latexmk", "*.out", "*.toc", "*.synctex.gz", ".keep")

README = ROOT / "README.md"
STUDENT_BEGIN, STUDENT_END = "<!-- BEGIN STUDENT README -->", "<!-- END STUDENT README -->"

ZIP_DATE = (1980, 1, 1, 0, 0, 0)
STORED_SUFFIXES = (".gz", ".npz", ".zip", ".png", ".jpg", ".pdf")


class BuildError(Exception):
    """The bundles cannot be built (something missing, or a leak)."""


# -- choosing files ----------------------------------------------------------
def _excluded(relpath, patterns):
    parts = PurePosixPath(relpath).parts
    return any(fnmatch.fnmatch(part, pattern) for part in parts for pattern in patterns) or any(
        fnmatch.fnmatch(relpath, pattern) for pattern in patterns)


def working_tree_files(root=ROOT):
    """Relative POSIX paths of the files of ``root`` that git would consider part of the tree.

    Tracked and untracked files, minus ignored ones (``git ls-files -co
    --exclude-standard``); without git, a walk that skips the usual build
    products.  Files that do not exist (deleted but still tracked) are left out.
    """
    root = Path(root)
    listed = None
    if (root / ".git").exists() and shutil.which("git"):
        result = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                                cwd=root, capture_output=True)
        if result.returncode == 0:
            listed = sorted({p for p in result.stdout.decode("utf-8", "surrogateescape").split("\0") if p})
    if listed is None:
        listed = sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                        if p.is_file() and not _excluded(p.relative_to(root).as_posix(), FALLBACK_EXCLUDED))
    return [p for p in listed if not _excluded(p, ALWAYS_EXCLUDED) and (root / p).is_file()]


def _under(files, folder):
    return [f for f in files if f.startswith(folder.rstrip("/") + "/")]


def student_readme(readme_text):
    """The student README: the text between the student markers of the top-level README."""
    if readme_text.count(STUDENT_BEGIN) != 1 or readme_text.count(STUDENT_END) != 1:
        raise BuildError(f"README.md must contain {STUDENT_BEGIN} and {STUDENT_END} once each "
                         "around the student section")
    body = readme_text.split(STUDENT_BEGIN, 1)[1].split(STUDENT_END, 1)[0].strip("\n")
    # The section's headings are one level down in the staff README; lift them by one level.
    lines, in_code = [], False
    for line in body.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        lines.append(line[1:] if not in_code and re.match(r"^##+ ", line) else line)
    return "\n".join(lines).strip() + "\n"


def student_version(arcname, payload):
    """A shipped file as students get it: without its ``BEGIN/END STAFF ONLY`` blocks (marker lines included)."""
    text = _as_text(payload)
    if text is None or STAFF_BEGIN not in text and STAFF_END not in text:
        return payload
    kept, begun = [], None
    for number, line in enumerate(text.splitlines(keepends=True), 1):
        if STAFF_BEGIN in line:
            if begun is not None:
                raise BuildError(f"{arcname}:{number}: {STAFF_BEGIN} inside the block begun on line {begun}")
            begun = number
        elif STAFF_END in line:
            if begun is None:
                raise BuildError(f"{arcname}:{number}: {STAFF_END} without {STAFF_BEGIN}")
            begun = None
        elif begun is None:
            kept.append(line)
    if begun is not None:
        raise BuildError(f"{arcname}:{begun}: {STAFF_BEGIN} without {STAFF_END}")
    return "".join(kept).encode("utf-8")


def student_bundle(root=ROOT, files=None):
    """``{arcname: bytes}`` of the student bundle."""
    root = Path(root)
    files = working_tree_files(root) if files is None else files
    bundle = {}
    for folder in STUDENT_DIRS:
        for rel in _under(files, folder):
            if rel.startswith(HIDDEN_IN_STUDENT_BUNDLE + "/") or rel in STUDENT_EXCLUDED:
                continue  # tests/hidden/ is generated below from hidden_tests/
            bundle[rel] = (root / rel).read_bytes()
    for rel in STUDENT_FILES:
        if rel in files:
            bundle[rel] = (root / rel).read_bytes()
    for rel in _under(files, HIDDEN_DIR):
        path = PurePosixPath(rel)
        if len(path.parts) == 2 and path.suffix == ".py":  # runner files only, never fixtures/
            bundle[f"{HIDDEN_IN_STUDENT_BUNDLE}/{path.name}"] = (root / rel).read_bytes()
    bundle = {arcname: student_version(arcname, payload) for arcname, payload in bundle.items()}
    readme = root / "README.md"
    if readme.exists():
        bundle["README.md"] = student_readme(readme.read_text()).encode()
    _require(bundle, REQUIRED_STUDENT, "student")
    return dict(sorted(bundle.items()))


def autograder_bundle(root=ROOT, files=None):
    """``{arcname: bytes}`` of the autograder bundle (and the set of executable arcnames)."""
    root = Path(root)
    files = working_tree_files(root) if files is None else files
    bundle, executable = {}, set()
    for arcname, (template, is_executable) in AUTOGRADER_TEMPLATES.items():
        path = root / "release" / template
        if not path.exists():
            raise BuildError(f"release/{template} is missing")
        bundle[arcname] = path.read_bytes()
        if is_executable:
            executable.add(arcname)
    for folder in AUTOGRADER_DIRS:
        for rel in _under(files, folder):
            if rel.startswith(HIDDEN_IN_STUDENT_BUNDLE + "/"):
                continue  # Gradescope runs hidden_tests/ itself
            bundle[rel] = (root / rel).read_bytes()
    for rel in AUTOGRADER_FILES:
        if rel in files:
            bundle[rel] = (root / rel).read_bytes()
    _require(bundle, REQUIRED_AUTOGRADER, "autograder")
    forbidden = sorted(a for a in bundle if a.startswith(("solution/", "staff/", "staff_tests/")))
    if forbidden:
        raise BuildError("the autograder bundle must not contain " + ", ".join(forbidden))
    return dict(sorted(bundle.items())), executable


def _require(bundle, names, which):
    missing = [name for name in names if name not in bundle]
    if missing:
        raise BuildError(f"the {which} bundle lacks {', '.join(missing)}")


# -- leak check --------------------------------------------------------------
TRIVIAL_NODES = 10  # statements with fewer AST nodes (contexts not counted) are too common to mean a leak
TEXT_LINE_MIN = 25  # region source lines shorter than this are not looked for in text files
ANSWER_LINE_MIN = 30  # answer-key lines shorter than this are not looked for
COMPOUND = (ast.For, ast.While, ast.If, ast.With)
# Statements of the regions that are no secret: generic idioms that the course library (src/) uses too,
# and one-liners that the stub's own docstring spells out.  Everything else of the regions is.
COMMON_IDIOMS = (
    "x = batch[0] if isinstance(batch, (tuple, list)) else batch",
    "device = next(model.parameters()).device",
    "self.mask_index = (self.mask_index + 1) % self.num_masks",  # update_masks: mask_index <- (mask_index + 1) % ...
    "return nll / (num_dims * math.log(2.0))",  # nll_to_bits_per_dim: ``nll / (num_dims * ln 2)``; see DOCSTRING_FORMULAS
)
# Graded functions whose whole answer is a formula that the stub's docstring states: shipped code may compute
# it (that gives nothing away), but only in the files listed.  Today one: the course library's bits/dim, and
# the grader's judging of 1b, whose expected values are this formula, not recorded values (the one exception
# to "expected values are recorded", see src/grading/worker/probes/q1.py).  The leak check fails when the stub's
# docstring stops stating the formula, when the reference stops computing it, or when another shipped file
# computes it.
DOCSTRING_FORMULAS = {
    ("autoregressive.py", "nll_to_bits_per_dim"): {
        "docstring": "nll / (num_dims * ln 2)",  # in the stub's docstring
        "expressions": ("nll / (num_dims * math.log(2.0))",  # the reference's (in its marked region)
                        "nll.double() / (num_dims * math.log(2.0))"),
        "files": ("src/train.py", "src/grading/host/judging/q1.py"),
    },
}


def _size(node):
    return sum(1 for n in ast.walk(node) if not isinstance(n, ast.expr_context))


def _strip_docstrings(node):
    for n in ast.walk(node):
        for field in ("body", "orelse", "finalbody"):
            body = getattr(n, field, None)
            if isinstance(body, list):
                kept = [s for s in body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)
                                                and isinstance(s.value.value, str))]
                setattr(n, field, kept or [ast.Pass()])
    return node


_SKIPPED_FIELDS = {"ctx", "type_comment", "annotation", "returns", "type_params", "kind"}
KEEP_NAMES = {"torch", "F", "nn", "math", "np", "numpy", "self", "range", "len", "zip", "enumerate", "int", "float",
              "list", "tuple", "dict", "sum", "min", "max", "abs", "isinstance", "super"}


def _serialize(node, rename=None):
    """A compact ``ast.dump`` without positions; ``rename`` maps variable and argument names."""
    if isinstance(node, list):
        return "[" + ",".join(_serialize(item, rename) for item in node) + "]"
    if not isinstance(node, ast.AST):
        return repr(node)
    parts = [type(node).__name__]
    for field, value in ast.iter_fields(node):
        if field in _SKIPPED_FIELDS:
            continue
        if rename is not None:
            if (isinstance(node, ast.Name) and field == "id") or (isinstance(node, ast.arg) and field == "arg"):
                value = rename(value)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and field == "name":
                value = "_f"
        parts.append(_serialize(value, rename))
    return "(" + ",".join(parts) + ")"


def _dump(node):
    return _serialize(node)


def _skeleton(node):
    """The statement with every variable name replaced by the same placeholder."""
    return _serialize(node, lambda name: name if name in KEEP_NAMES else "_")


def _alpha_dump(statements):
    """The statements with variable names replaced by placeholders numbered in order of appearance."""
    names = {}
    rename = lambda name: name if name in KEEP_NAMES else names.setdefault(name, f"_v{len(names)}")  # noqa: E731
    return ",".join(_serialize(s, rename) for s in statements)


def _parse_block(text):
    """Statements of a dedented region (wrapped in a function if it only parses there)."""
    try:
        return ast.parse(text).body
    except SyntaxError:
        return ast.parse("def _region():\n" + textwrap.indent(text, "    ")).body[0].body


def _bodies(tree):
    """Every statement list of ``tree`` (module, function, loop, branch bodies)."""
    for node in ast.walk(tree):
        for field in ("body", "orelse", "finalbody"):
            body = getattr(node, field, None)
            if isinstance(body, list) and body and isinstance(body[0], ast.stmt):
                yield body
        if isinstance(node, ast.Match):
            for case in node.cases:
                yield case.body


class Region:
    def __init__(self, file, first_line, source):
        self.file, self.first_line, self.source = file, first_line, source
        self.statements = [_strip_docstrings(s) for s in _parse_block(source)]

    def __str__(self):
        return f"solution/{self.file}:{self.first_line}"


def solution_regions(solution_dir):
    """Every marked region of ``solution/*.py``, and the source of the stubs made from them."""
    regions, stubs = [], {}
    for name in MODULES:
        source = (Path(solution_dir) / name).read_text()
        lines = source.splitlines(keepends=True)
        for start, end in marked_regions(lines):
            text = textwrap.dedent("".join(lines[start + 1:end]))
            if text.strip():
                regions.append(Region(name, start + 2, text))
        stubs[name] = make_stub(source)
    return regions, stubs


class LeakChecker:
    """Finds what a student bundle must not contain; ``check(bundle)`` returns readable findings."""

    def __init__(self, root=ROOT):
        root = Path(root)
        self.root = root
        self.regions, self.stubs = solution_regions(root / "solution")
        public_dumps = {_dump(ast.parse(idiom).body[0]) for idiom in COMMON_IDIOMS}
        public_lines = set(COMMON_IDIOMS)
        for stub in self.stubs.values():
            tree = _strip_docstrings(ast.parse(stub))
            public_dumps |= {_dump(n) for n in ast.walk(tree) if isinstance(n, ast.stmt)}
            public_lines |= {line.strip() for line in stub.splitlines()}
        # single statements of the regions (at any depth) that are neither trivial nor shown in the stubs
        self.statement_index = {}
        self.block_index = {}  # (number of statements, alpha dump) -> region
        self.block_skeletons = set()  # tuples of the statements' skeletons: a fast first filter
        self.text_lines = {}
        for region in self.regions:
            for stmt in (n for s in region.statements for n in ast.walk(s) if isinstance(n, ast.stmt)):
                dump = _dump(stmt)
                if _size(stmt) >= TRIVIAL_NODES and dump not in public_dumps:
                    self.statement_index.setdefault(dump, (region, stmt.lineno))
            if len(region.statements) >= 2 and sum(map(_size, region.statements)) >= TRIVIAL_NODES:
                self._index_block(region.statements, region)
            for stmt in region.statements:  # compound statements with renamed variables
                if isinstance(stmt, COMPOUND) and _size(stmt) >= 2 * TRIVIAL_NODES:
                    self._index_block([stmt], region)
            for offset, line in enumerate(region.source.splitlines()):
                text = line.strip()
                if (len(text) >= TEXT_LINE_MIN and not text.startswith("#") and not text.endswith(":")
                        and text not in public_lines):
                    self.text_lines.setdefault(text, (region, offset))
        self.forbidden_bytes = self._forbidden_files()
        self.answer_lines = self._answer_lines()
        self.hidden_values = self._hidden_values()
        self.formulas, self.formula_problems = self._docstring_formulas()

    def _index_block(self, statements, region):
        self.block_index.setdefault((len(statements), _alpha_dump(statements)), region)
        self.block_skeletons.add(tuple(_skeleton(s) for s in statements))

    # -- sources of secrets -------------------------------------------------
    def _forbidden_files(self):
        """sha256 -> description of every staff-only file (a byte copy of one is a leak)."""
        digests = {}
        for folder in ("solution", "staff", HIDDEN_FIXTURES_DIR):
            base = self.root / folder
            if base.exists():
                for path in sorted(p for p in base.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
                    payload = path.read_bytes()
                    # a short generic staff file (a .gitignore, a Makefile) may have a twin in written/
                    if payload.strip() and (folder != "staff" or len(payload) >= 200):
                        digests[hashlib.sha256(payload).hexdigest()] = path.relative_to(self.root).as_posix()
        return digests

    def _answer_lines(self):
        """Lines of the answer key's answers (staff/**/answers/*) that the student templates lack."""
        template_lines = set()
        for path in (self.root / "written").rglob("*.tex"):
            template_lines |= {line.strip() for line in path.read_text(errors="replace").splitlines()}
        lines = {}
        for path in sorted((self.root / "staff").rglob("*")):
            if not path.is_file() or "answers" not in path.relative_to(self.root).parts:
                continue
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                text = line.strip()
                if len(text) >= ANSWER_LINE_MIN and not text.startswith("%") and text not in template_lines:
                    lines.setdefault(text, f"{path.relative_to(self.root).as_posix()}:{number}")
        return lines

    def _hidden_values(self):
        """The tensors of the hidden expected values, by shape, that are big enough to recognise."""
        path = self.root / HIDDEN_FIXTURES_DIR / "expected.pt"
        if not path.exists():
            return {}
        import torch

        values = {}
        for key, tensor in _tensors(torch.load(path, weights_only=True)):
            if tensor.numel() >= 4:
                values.setdefault(tuple(tensor.shape), []).append((key, tensor.double()))
        return values

    def _docstring_formulas(self):
        """dump of each allowed expression -> (function, its entry); and what no longer holds of the allowances."""
        formulas, problems = {}, []
        for (module, function), entry in DOCSTRING_FORMULAS.items():
            where = f"DOCSTRING_FORMULAS[{module}, {function}]"
            stub = next((n for n in ast.walk(ast.parse(self.stubs[module]))
                         if isinstance(n, ast.FunctionDef) and n.name == function), None)
            if stub is None or entry["docstring"] not in (ast.get_docstring(stub) or ""):
                problems.append(f"{where}: the docstring of submission/{module}:{function} no longer states "
                                f"{entry['docstring']!r}, so computing it in shipped code may give the answer away")
            reference = ast.parse(entry["expressions"][0], mode="eval").body
            if not any(_dump(reference) in {_dump(n) for s in region.statements for n in ast.walk(s)}
                       for region in self.regions if region.file == module):
                problems.append(f"{where}: the reference no longer computes {entry['expressions'][0]!r}")
            for expression in entry["expressions"]:
                formulas[_dump(ast.parse(expression, mode="eval").body)] = (function, entry)
        return formulas, problems

    # -- the check ------------------------------------------------------------
    def check(self, bundle):
        findings = list(self.formula_problems)
        for arcname, payload in bundle.items():
            findings += self._check_path(arcname)
            digest = hashlib.sha256(payload).hexdigest()
            if digest in self.forbidden_bytes:
                findings.append(f"{arcname}: is a copy of the staff-only file {self.forbidden_bytes[digest]}")
            if arcname.endswith((".pt", ".pth")):
                findings += self._check_tensors(arcname, payload)
            text = _as_text(payload)
            if text is None:
                continue
            if arcname.endswith(".py"):  # code: syntax trees (the text scan would flag common one-liners)
                findings += self._check_python(arcname, text)
            else:
                findings += self._check_region_lines(arcname, text)
            findings += self._check_answer_lines(arcname, text)
        return findings

    @staticmethod
    def _check_path(arcname):
        if arcname.startswith(STAFF_ONLY):
            return [f"{arcname}: staff-only path in the student bundle"]
        if PurePosixPath(arcname).name == "expected.pt" or "/fixtures/expected" in arcname:
            return [f"{arcname}: the hidden expected values must not ship"]
        return []

    def _check_python(self, arcname, text):
        try:
            tree = ast.parse(text)
        except SyntaxError as error:
            return [f"{arcname}: does not parse ({error.msg}, line {error.lineno}), so it cannot be checked"]
        tree = _strip_docstrings(tree)
        findings = []
        seen = set()
        for node in ast.walk(tree):
            formula = self.formulas.get(_dump(node)) if isinstance(node, ast.BinOp) else None
            if formula and arcname not in formula[1]["files"] and formula[0] not in seen:
                seen.add(formula[0])
                findings.append(f"{arcname}:{node.lineno}: computes the answer of {formula[0]} "
                                f"({ast.unparse(node)}); DOCSTRING_FORMULAS allows that only in "
                                f"{', '.join(formula[1]['files'])}")
            if isinstance(node, ast.stmt):
                hit = self.statement_index.get(_dump(node))
                if hit and hit[0] not in seen:
                    seen.add(hit[0])
                    region, _ = hit
                    findings.append(f"{arcname}:{node.lineno}: contains code of the reference region {region} "
                                    f"({ast.unparse(node).splitlines()[0][:80]})")
        widths = sorted({width for width, _ in self.block_index})
        for body in _bodies(tree):
            skeletons = [_skeleton(s) for s in body]
            for width in widths:
                for start in range(len(body) - width + 1):
                    if tuple(skeletons[start:start + width]) not in self.block_skeletons:
                        continue
                    window = body[start:start + width]
                    region = self.block_index.get((width, _alpha_dump(window)))
                    if region and region not in seen:
                        seen.add(region)
                        findings.append(f"{arcname}:{window[0].lineno}: contains the code of the reference "
                                        f"region {region} (with renamed variables)")
        return findings

    def _check_region_lines(self, arcname, text):
        for line, (region, _) in self.text_lines.items():
            if line in text:
                return [f"{arcname}: contains the line {line[:60]!r} of the reference region {region}"]
        return []

    def _check_answer_lines(self, arcname, text):
        for line, where in self.answer_lines.items():
            if line in text:
                return [f"{arcname}: contains the answer-key line {where} ({line[:60]!r})"]
        return []

    def _check_tensors(self, arcname, payload):
        import torch

        try:
            data = torch.load(io.BytesIO(payload), weights_only=True)
        except Exception as error:  # noqa: BLE001 - anything unreadable cannot be vetted
            return [f"{arcname}: cannot be read with torch.load(weights_only=True) to check it ({error})"[:300]]
        findings = []
        for key, _ in _tensors(data):
            if re.match(r"^\w+-\d+-hidden/", key):
                findings.append(f"{arcname}: holds the hidden expected value {key.split('/')[0]}/...")
                return findings
        for key, tensor in _tensors(data):
            for hidden_key, hidden in self.hidden_values.get(tuple(tensor.shape), ()):
                if tensor.dtype != torch.bool and torch.equal(tensor.double(), hidden):
                    findings.append(f"{arcname}: entry {key!r} equals the hidden expected value {hidden_key!r}")
                    return findings
        return findings


def _as_text(payload):
    if b"\0" in payload[:8192]:
        return None
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _tensors(value, prefix=""):
    """``(key, tensor)`` of every tensor inside nested dicts and lists."""
    import torch

    if isinstance(value, torch.Tensor):
        yield prefix, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _tensors(item, f"{prefix}/{key}" if prefix else str(key))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _tensors(item, f"{prefix}[{i}]")


# -- writing -----------------------------------------------------------------
def write_zip(path, bundle, executable=()):
    """A deterministic zip: sorted entries, fixed timestamps and modes, no directory entries."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for arcname in sorted(bundle):
            info = zipfile.ZipInfo(arcname, date_time=ZIP_DATE)
            info.create_system = 3  # unix, so that unzip applies the modes below
            info.external_attr = (0o100755 if arcname in executable else 0o100644) << 16
            if arcname.endswith(STORED_SUFFIXES):  # compressed already: deflating again only costs time
                info.compress_type = zipfile.ZIP_STORED
                archive.writestr(info, bundle[arcname])
            else:
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, bundle[arcname], compresslevel=9)
    Path(path).write_bytes(buffer.getvalue())


def write_tree(directory, bundle, executable=()):
    directory = Path(directory)
    if directory.exists():
        shutil.rmtree(directory)
    for arcname, payload in bundle.items():
        target = directory / arcname
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(payload)
        target.chmod(0o755 if arcname in executable else 0o644)


def build(out_dir, root=ROOT, check_only=False, log=print):
    """Build both bundles into ``out_dir``; raise ``BuildError`` listing the leaks, if any."""
    started = time.monotonic()
    files = working_tree_files(root)
    student = student_bundle(root, files)
    autograder, executable = autograder_bundle(root, files)
    findings = LeakChecker(root).check(student)
    if findings:
        raise BuildError("the student bundle leaks staff-only material:\n  " + "\n  ".join(findings))
    log(f"leak check: {len(student)} files of the student bundle are clean")
    if check_only:
        return {}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_zip(out_dir / "student.zip", student)
    write_tree(out_dir / "student", student)
    write_zip(out_dir / "autograder.zip", autograder, executable)
    sizes = {name: (out_dir / name).stat().st_size for name in ("student.zip", "autograder.zip")}
    for name, bundle in (("student.zip", student), ("autograder.zip", autograder)):
        log(f"{out_dir / name}: {len(bundle)} files, {sum(map(len, bundle.values())) / 1e6:.1f} MB unpacked, "
            f"{sizes[name] / 1e6:.1f} MB zipped")
    log(f"built in {time.monotonic() - started:.1f} s")
    return sizes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "dist"), help="output folder (default: dist/)")
    parser.add_argument("--check", action="store_true", help="only run the leak check; write nothing")
    args = parser.parse_args(argv)
    try:
        build(args.out, check_only=args.check)
    except BuildError as error:
        print(f"build_release: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
