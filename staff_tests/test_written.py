"""Staff tests of the written part: the student template (written/) and the answer key
(staff/written_key/).

The structural tests need only Python; the build tests run tools/check_written.py and
are skipped when no LaTeX toolchain (latexmk, pdflatex) is installed.
"""
import importlib.util
import json
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WRITTEN = ROOT / "written"
KEY = ROOT / "staff" / "written_key"
POINTS = json.loads((ROOT / "tests" / "points.json").read_text())
WRITTEN_IDS = sorted(q for q, info in POINTS["questions"].items() if info["type"] == "written")
FIGURES = ("made_samples", "made_curves", "pixelcnn_samples", "pixelcnn_curves", "receptive_field")


def _load_checker():
    spec = importlib.util.spec_from_file_location("check_written", ROOT / "tools" / "check_written.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _strip_comments(tex):
    """TeX source without % comments (an escaped \\% is kept)."""
    return "\n".join(re.sub(r"(?<!\\)%.*", "", line) for line in tex.splitlines())


def _manifest_points(question):
    return sum(t["points"] for t in POINTS["tests"].values() if t["question"] == question)


def test_there_are_written_questions():
    assert WRITTEN_IDS == ["1e", "1f", "1g", "2d", "3d", "4d"]


@pytest.mark.parametrize("question", WRITTEN_IDS)
def test_question_file_points_and_title_match_manifest(question):
    path = WRITTEN / "questions" / f"{question}.tex"
    assert path.exists(), f"missing {path.relative_to(ROOT)}"
    tex = _strip_comments(path.read_text())
    points = re.findall(r"\\points\{([0-9.]+)\}", tex)
    assert len(points) == 1, f"{path.name}: expected exactly one \\points{{n}}, found {points}"
    assert float(points[0]) == pytest.approx(_manifest_points(question)), (
        f"{path.name}: \\points{{{points[0]}}} but tests/points.json gives {_manifest_points(question)}")
    heading = re.search(r"\\questionheading\{([^}]*)\}\{(.*?)\\points", tex, flags=re.S)
    assert heading and heading.group(1) == question, f"{path.name}: \\questionheading{{{question}}}{{...}} missing"
    title = POINTS["questions"][question]["title"].removeprefix("Written: ")
    assert " ".join(heading.group(2).split()).lower() == title.lower()


def test_no_question_files_beyond_the_manifest():
    for folder in (WRITTEN / "questions", WRITTEN / "answers", KEY / "answers"):
        ids = sorted(p.stem for p in folder.glob("*.tex"))
        assert ids == WRITTEN_IDS, f"{folder.relative_to(ROOT)} has {ids}"


def test_every_question_is_in_the_document_once_in_order():
    content = _strip_comments((WRITTEN / "content.tex").read_text())
    assert re.findall(r"\\Question\{([^}]*)\}", content) == WRITTEN_IDS


@pytest.mark.parametrize("folder", [WRITTEN / "answers", KEY / "answers"], ids=["student", "key"])
def test_answer_files_have_one_answer_environment(folder):
    for question in WRITTEN_IDS:
        tex = _strip_comments((folder / f"{question}.tex").read_text())
        assert tex.count(r"\begin{answer}") == 1 and tex.count(r"\end{answer}") == 1, f"{folder}/{question}.tex"


def test_student_answer_stubs_are_empty():
    """A stub may hold structure (items, tables, figures) but no prose."""
    for question in WRITTEN_IDS:
        tex = _strip_comments((WRITTEN / "answers" / f"{question}.tex").read_text())
        lines = [line for line in tex.splitlines() if "&" not in line and r"\psfigure" not in line]
        rest = re.sub(r"\\[a-zA-Z]+\*?(\[[^\]]*\]|\{[^{}]*\})*", " ", "\n".join(lines))
        rest = re.sub(r"\[[^\]]*\]", " ", rest)  # optional arguments such as [(i)]
        assert re.fullmatch(r"[\s{}\[\]().,$=0-9]*", rest), f"answers/{question}.tex has prose: {rest.split()}"


def test_model_answers_do_not_leak_into_written():
    """No sentence of the key's answers appears anywhere in written/ (which ships to students)."""
    written_text = " ".join(" ".join(p.read_text().split()) for p in WRITTEN.rglob("*") if p.is_file()
                            and p.suffix in {".tex", ".md", ""})
    for path in (KEY / "answers").glob("*.tex"):
        for line in _strip_comments(path.read_text()).splitlines():
            line = " ".join(line.split())
            if len(line) >= 40:
                assert line not in written_text, f"{path.name}: {line!r} is in written/"
    assert not list(WRITTEN.rglob("key.tex"))
    for tex in WRITTEN.rglob("*.tex"):
        assert not re.search(r"\\def\\answerkeymode", _strip_comments(tex.read_text())), tex


def test_key_reuses_the_template():
    key = _strip_comments((KEY / "key.tex").read_text())
    assert re.search(r"\\newcommand\{\\writtendir\}\{\.\./\.\./written\}", key)
    assert re.search(r"\\newcommand\{\\answerdir\}\{answers\}", key)
    assert r"\input{\writtendir/content}" in key and r"\input{\writtendir/macros}" in key
    main = _strip_comments((WRITTEN / "main.tex").read_text())
    assert r"\input{\writtendir/content}" in main and r"\input{\writtendir/macros}" in main


def test_every_figure_has_one_command_in_one_file():
    commands = _strip_comments((WRITTEN / "library_commands.tex").read_text())
    names = re.findall(r"\\SetLibraryCommand\{([^}]*)\}\{([^}]*)\}", commands)
    registered = dict(names)
    assert len(registered) == len(names), "a command is registered twice"
    for figure in FIGURES:
        assert figure in registered, f"no command for {figure}.png in library_commands.tex"
        assert registered[figure].startswith("python -m src train "), figure  # the run; `figures` copies
    assert registered["figures"] == "python -m src figures"
    used = set()
    for tex in list(WRITTEN.rglob("*.tex")) + list(KEY.rglob("*.tex")):
        text = _strip_comments(tex.read_text())
        used.update(re.findall(r"\\psfigure(?:\[[^\]]*\])?\{([^}]*)\}", text))
        used.update(re.findall(r"\\(?:Fitted)?LibraryCommand(?:Line)?\{([^}]*)\}", text))
        if tex.name != "library_commands.tex":
            assert "python -m src" not in text, f"{tex.name}: name library commands only in library_commands.tex"
    assert set(FIGURES) <= used
    used = {name for name in used if "#" not in name}  # not the macros' own parameters (#1, #2)
    assert used <= set(registered), f"unregistered: {used - set(registered)}"


def test_check_script_skips_without_latex(monkeypatch, capsys):
    checker = _load_checker()
    monkeypatch.setattr(checker.shutil, "which", lambda program: None)
    assert checker.main([]) == 0
    assert "SKIPPED: latexmk not found" in capsys.readouterr().out


def test_tiny_png_is_a_png(tmp_path):
    checker = _load_checker()
    checker.tiny_png(tmp_path / "x.png")
    assert (tmp_path / "x.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


needs_latex = pytest.mark.skipif(shutil.which("latexmk") is None or shutil.which("pdflatex") is None,
                                 reason="latexmk/pdflatex not installed")


@needs_latex
@pytest.mark.parametrize("fake_figures", [False, True], ids=["placeholders", "figures"])
def test_template_and_key_build(fake_figures, tmp_path, capsys):
    checker = _load_checker()
    status = checker.check(fake_figures=fake_figures, keep=tmp_path)
    out = capsys.readouterr().out
    assert status == 0, out
    assert (tmp_path / "main.pdf").stat().st_size > 10_000
    assert (tmp_path / "key.pdf").stat().st_size > 10_000


@pytest.fixture(scope="module")
def built_template(tmp_path_factory):
    """written/ copied and built once with plain latexmk, no figures: (folder, log of the build)."""
    if shutil.which("latexmk") is None or shutil.which("pdflatex") is None:
        pytest.skip("latexmk/pdflatex not installed")
    checker = _load_checker()
    root = checker.copy_sources(tmp_path_factory.mktemp("written"))
    for figure in (root / "written" / "figures").glob("*.png"):
        figure.unlink()  # PNGs a TA made in the working tree
    ok, _, message = checker.build(root, "template", "written", "main.tex")
    assert ok, message
    return root / "written"


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils) not installed")
def test_library_commands_paste_back_from_the_pdf(built_template):
    import subprocess

    text = subprocess.run(["pdftotext", "main.pdf", "-"], cwd=built_template, capture_output=True, text=True,
                          check=True).stdout
    commands = dict(re.findall(r"\\SetLibraryCommand\{([^}]*)\}\{([^}]*)\}",
                               _strip_comments((WRITTEN / "library_commands.tex").read_text())))
    used = {name for name in FIGURES} | {"made_help", "figures"} | set(_question_commands()) | {
        name for name in commands if name.startswith("train_")}
    lines = text.splitlines()
    for name in sorted(used):
        assert any(commands[name] in line for line in lines), f"{name}: {commands[name]!r} not on one line of the PDF"
    assert not [line for line in lines if "python -m src" in line and ("\u2013" in line or "\u2014" in line)]


def test_plain_rebuild_includes_a_figure_that_appeared(built_template):
    checker = _load_checker()
    figure = built_template / "figures" / "made_curves.png"
    checker.tiny_png(figure)
    ok, _, message = checker.build(built_template.parent, "template", "written", "main.tex")
    assert ok, message
    recorded = (built_template / "main.fls").read_text()
    assert "figures/made_curves.png" in recorded, "latexmk did not rebuild: the new figure is not in the PDF"


# --------------------------------------------------------------------------- the questions' commands

#: For every library command that a question names: the options that make it small (appended: the last
#: of a repeated option wins) and the lines it must print (what the question asks for, labelled).
NLL_LINE = r"[\d.]+ nats \([\d.]+ bits/dim\) on 50 test images$"
MADE_SMALL = ["--impl", "solution", "--hidden", "16", "--epochs", "1", "--train-limit", "200", "--valid-limit",
              "50", "--test-limit", "50", "--n-samples", "1", "--no-progress"]
PIXELCNN_SMALL = ["--impl", "solution", "--channels", "4", "--blocks", "0", "--kernel-size", "3", "--epochs", "1",
                  "--train-limit", "50", "--valid-limit", "50", "--test-limit", "50", "--n-samples", "1",
                  "--no-progress"]
TRAINED = [r"^made \(solution, [\d,]+ parameters", r"^training time: [\d.]+ s for 1 epoch",
           r"^independent-pixel baseline on the same images: [\d.]+ nats"]
QUESTION_COMMANDS = {
    "made_help": ([], [r"--num-masks", r"--random-ordering", r"--seed"]),
    "baseline": (["--train-limit", "200", "--test-limit", "50"],
                 [r"^independent pixels \(fit on 200 training images\): [\d.]+ nats",
                  r"^uniform: 543\.43 nats \(1\.0000 bits/dim\)$"]),
    "train_made": (MADE_SMALL, [r"^test NLL " + NLL_LINE, *TRAINED]),
    "made_random": (MADE_SMALL, [r"^test NLL " + NLL_LINE, *TRAINED]),
    "made_seed": (MADE_SMALL, [r"^test NLL " + NLL_LINE, *TRAINED]),
    "made_masks": (MADE_SMALL, [r"^test NLL, ensemble of 4 mask sets: " + NLL_LINE, *TRAINED]),
    "train_pixelcnn": (PIXELCNN_SMALL, [r"^test NLL " + NLL_LINE]),
    "made_masks_ensemble": (["--impl", "solution", "--limit", "50", "--no-progress"],
                            [r"^test NLL, ensemble of 4 mask sets: [\d.]+ nats \([\d.]+ bits/dim\) on 50 images$"]),
    "made_masks_single": (["--impl", "solution", "--limit", "50", "--no-progress"],
                          [r"^test NLL, mask set \d alone \(of 4\): [\d.]+ nats \([\d.]+ bits/dim\) on 50 images$"]),
    "figures": ([], [r"^copied 5 figure\(s\) into written/figures"]),
}


def _question_commands():
    """The library commands named in the questions and the instructions, in the order they appear."""
    names = []
    for tex in [WRITTEN / "front.tex"] + sorted((WRITTEN / "questions").glob("*.tex")):
        for name in re.findall(r"\\(?:Fitted)?LibraryCommand(?:Line)?\{([^}]*)\}", _strip_comments(tex.read_text())):
            names.append(name) if name not in names else None
    return names


def test_every_question_command_runs_and_prints_what_the_question_asks(tmp_path, monkeypatch, capsys):
    """Walk through the questions' commands (small sizes) in a copy of written/, as a student would, then
    build the PDF: the figures reach it by the documented path (train, then `python -m src figures`)."""
    import shlex
    import sys

    sys.path.insert(0, str(ROOT))
    from src import cli, data

    try:
        data.binarized_mnist("test")
    except FileNotFoundError as error:
        pytest.skip(f"MNIST is not there: {error}")
    commands = dict(re.findall(r"\\SetLibraryCommand\{([^}]*)\}\{([^}]*)\}",
                               _strip_comments((WRITTEN / "library_commands.tex").read_text())))
    used = _question_commands()
    assert {"train_made", "train_pixelcnn", "figures", "made_masks_single"} <= set(used), used
    assert set(used) <= set(QUESTION_COMMANDS), f"no expectation in QUESTION_COMMANDS for {set(used) - set(QUESTION_COMMANDS)}"
    _load_checker().copy_sources(tmp_path)
    for figure in (tmp_path / "written" / "figures").glob("*.png"):
        figure.unlink()
    monkeypatch.chdir(tmp_path)  # relative paths as the commands give them: runs/..., written/figures
    order = sorted(used, key=lambda name: (name == "figures", "evaluate" in commands[name]))  # runs first
    printed = {}
    for name in order:
        small, expected = QUESTION_COMMANDS[name]
        argv = shlex.split(commands[name])
        assert argv[:3] == ["python", "-m", "src"], commands[name]
        try:
            status = cli.main(argv[3:] + small)
        except SystemExit as exit_:  # --help
            status = exit_.code
        out = printed[name] = capsys.readouterr().out
        assert status == 0, f"{commands[name]}: exit {status}\n{out}"
        for pattern in expected:
            assert re.search(pattern, out, re.M), f"{commands[name]} did not print {pattern!r}:\n{out}"
    # the ensemble that the training run printed is the one that `evaluate` measures, on the same images
    trained = re.search(r"ensemble of 4 mask sets: ([\d.]+) nats", printed["made_masks"]).group(1)
    assert re.search(r"ensemble of 4 mask sets: ([\d.]+) nats", printed["made_masks_ensemble"]).group(1) == trained
    for figure in FIGURES:
        assert (tmp_path / "written" / "figures" / f"{figure}.png").read_bytes()[:4] == b"\x89PNG", figure
    if shutil.which("latexmk") is None or shutil.which("pdflatex") is None:
        return  # the figures are where main.tex reads them; building it needs LaTeX
    ok, _, message = _load_checker().build(tmp_path, "template", "written", "main.tex")
    assert ok, message
    recorded = (tmp_path / "written" / "main.fls").read_text()
    for figure in FIGURES:
        assert f"figures/{figure}.png" in recorded, f"{figure}.png is not in the PDF"
