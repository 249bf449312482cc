"""``python grader.py --submission upload.zip``: the zip a student will upload, graded as Gradescope would.

The reference's three files zipped flat and inside one folder grade as the folder does (question 1a only: the
zip is the point here, not the grade); a zip without made.py says what Gradescope would make of it, as the
autograder really grades it (made.py's questions 0, the others in full); unsafe or oversized zips are refused
before anything is written; the temporary folder is gone after every run, also after Ctrl-C.  About 40 s.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT, run, validate_results

from src.grading.host import submission_upload

MODULES = ("autoregressive.py", "made.py", "pixelcnn.py")


@pytest.fixture
def scratch():
    """The grader's TMPDIR: world-traversable (not pytest's tmp_path, private to root), because as root the
    sandbox user reads its copy of the submission from the grader's temporary folder."""
    path = Path(tempfile.mkdtemp(prefix="ps1-upload-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def make_zip(path, members):
    """``members``: {name in the zip: bytes}."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, payload in members.items():
            zf.writestr(name, payload)
    return path


def reference(prefix="", leave_out=()):
    return {f"{prefix}{name}": (ROOT / "solution" / name).read_bytes() for name in MODULES if name not in leave_out}


def grade(submission, scratch, *select):
    """Run grader.py with TMPDIR=scratch; return (stdout, {test id: score}, returncode)."""
    results = scratch / "results.json"
    done = run([sys.executable, ROOT / "grader.py", *select, "--submission", submission, "--results", results],
               env={"TMPDIR": str(scratch)}, timeout=300, check=False)
    scores = {t["number"]: t["score"] for t in validate_results(json.loads(results.read_text()))["tests"]}
    results.unlink()
    return done, scores


def unpacked_left(scratch):
    return sorted(p.name for p in scratch.iterdir() if "-unpacked-" in p.name)


@pytest.mark.parametrize("prefix", ["", "ps1 submission/"], ids=["flat", "in-a-folder"])
def test_zip_of_the_reference_grades_like_its_folder(scratch, prefix):
    folder, folder_scores = grade(ROOT / "solution", scratch, "1a")
    upload = make_zip(scratch / "upload.zip", reference(prefix))
    zipped, zip_scores = grade(upload, scratch, "1a")
    assert folder.returncode == zipped.returncode == 0, zipped.stdout + zipped.stderr
    assert zip_scores == folder_scores and sum(zip_scores.values()) > 0, (zip_scores, folder_scores)
    for name in MODULES:
        assert f"{name}: graded the file upload.zip/{prefix}{name}" in zipped.stdout, zipped.stdout
    assert "Grading upload.zip (question(s) 1a)" in zipped.stdout, zipped.stdout
    assert unpacked_left(scratch) == []


def test_zip_without_made_says_what_gradescope_would_grade(scratch, manifest):
    upload = make_zip(scratch / "upload.zip", reference("hw/", leave_out=("made.py",)))
    done, scores = grade(upload, scratch, "1a", "2a")
    made_questions = [q for q, entry in manifest["questions"].items()
                      if entry["type"] == "coding" and entry["file"] == "made.py"]
    expected = (f"upload.zip has no made.py: Gradescope would grade made.py as missing: 0 points for questions "
                f"{', '.join(made_questions[:-1])} and {made_questions[-1]}")
    assert expected in done.stdout, done.stdout
    assert done.returncode == 0
    for test_id, score in scores.items():
        max_score = manifest["tests"][test_id]["points"]
        assert score == (0 if test_id.startswith("2a") else max_score), (test_id, score, done.stdout[-3000:])
    assert unpacked_left(scratch) == []


@pytest.mark.parametrize("member", ["../escape.py", "/tmp/absolute.py", "hw/../../escape.py"])
def test_zip_slip_is_refused_before_anything_is_written(scratch, member):
    upload = make_zip(scratch / "slip.zip", {**reference(), member: b"print('out')\n"})
    done = run([sys.executable, ROOT / "grader.py", "--submission", upload], env={"TMPDIR": str(scratch)},
               timeout=120, check=False)
    assert done.returncode == 2, done
    assert done.stderr.strip() == (f"grader.py: --submission {upload}: slip.zip is refused: its member {member!r} "
                                   "would be written outside the folder it is unpacked in (an absolute path or "
                                   "'..'); zip your three files, or the one folder that holds them, again"), done
    assert not (scratch.parent / "escape.py").exists() and unpacked_left(scratch) == []


def test_oversized_or_broken_zips_are_refused(tmp_path):
    big = make_zip(tmp_path / "big.zip", {**reference(), "data.bin": bytes(submission_upload.MAX_UPLOAD_ZIP_BYTES)})
    crowded = make_zip(tmp_path / "crowded.zip", {f"f{i}.txt": b"" for i in range(
        submission_upload.MAX_UPLOAD_ZIP_MEMBERS + 1)})
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK not a zip")
    for upload, reason in ((big, "it unpacks to"), (crowded, "files, more than"), (broken, "cannot be read")):
        work = tmp_path / f"work-{upload.stem}"
        work.mkdir()
        with pytest.raises(submission_upload.UploadError, match=reason):
            submission_upload.unpack_upload_zip(upload, work)
        assert not any((work / "upload").iterdir())


def test_ctrl_c_removes_the_unpacked_zip(scratch):
    upload = make_zip(scratch / "upload.zip", reference())
    command = [sys.executable, str(ROOT / "grader.py"), "1a", "1b", "2a", "--submission", str(upload)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "TMPDIR": str(scratch)},
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith("[ 1/"):  # grading, with the unpacked folder in use
            assert len(unpacked_left(scratch)) == 1, "".join(lines)
            process.send_signal(signal.SIGINT)
            break
    lines.append(process.communicate(timeout=120)[0])
    assert process.returncode == 130, "".join(lines)
    assert unpacked_left(scratch) == []
