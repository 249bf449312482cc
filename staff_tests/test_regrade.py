"""Staff tests of tools/regrade.py on a synthetic Gradescope export (questions 1a and 2a only: the regrade is the
point here, not the full grade).

The export has five submissions: the reference as loose files (beside a ``.zip`` that is not one), the
reference with the stub of made.py in a nested folder, the reference zipped (a group of two), a hostile one
(exit at import, syntax error) and an empty one; and a folder that the metadata does not name.  Each
submission's regraded score must equal what ``grader.py`` gives it alone, after an interrupted first run.
"""
import concurrent.futures
import csv
import json
import os
import signal
import subprocess
import sys
import time
import zipfile

import pytest
from conftest import ROOT, validate_results
from test_grader_hostile import compose

sys.path.insert(0, str(ROOT / "release"))
import collect_submission  # noqa: E402

SELECT = ["1a", "2a"]
MODULES = ("autoregressive.py", "made.py", "pixelcnn.py")
METADATA = """\
:submission_1001:
  :submitters:
  - :name: Ada Loose
    :sid: '1'
    :email: ada@example.edu
  :created_at: 2026-10-01 10:00:00.000000000 -07:00
  :score: 30.0
:submission_1002:
  :submitters:
  - :name: Bo Folder
    :sid: '2'
    :email: bo@example.edu
  :created_at: 2026-10-01 11:00:00.000000000 -07:00
  :score: 20.0
:submission_1003:
  :submitters:
  - :name: Cy Zip
    :sid: '3'
    :email: cy@example.edu
  - :name: Di Group
    :sid: '4'
    :email: di@example.edu
  :created_at: 2026-10-02 09:30:00.000000000 -07:00
  :score: 30.0
:submission_1004:
  :submitters:
  - :name: Ed Hostile
    :sid: '5'
    :email: ed@example.edu
  :created_at: 2026-10-02 23:59:00.000000000 -07:00
  :score: 0.0
:submission_1005:
  :submitters:
  - :name: Fay Empty
    :sid: '6'
    :email: fay@example.edu
  :created_at: 2026-10-03 08:00:00.000000000 -07:00
  :score: 0.0
"""


def make_export(folder):
    """Gradescope's export zip (a top folder inside, as Gradescope makes it); returns the zip's path."""
    export = folder / "assignment_42_export"
    loose = export / "submission_1001"
    loose.mkdir(parents=True)
    for name in MODULES:
        (loose / name).write_bytes((ROOT / "solution" / name).read_bytes())
    (loose / "broken.zip").write_text("not a zip\n")
    nested = export / "submission_1002" / "My Submission" / "ps1"
    nested.mkdir(parents=True)
    for name in MODULES:
        source = ROOT / ("submission" if name == "made.py" else "solution") / name
        (nested / name).write_bytes(source.read_bytes())
    (export / "submission_1003").mkdir()
    with zipfile.ZipFile(export / "submission_1003" / "ps1.zip", "w") as archive:
        for name in MODULES:
            archive.write(ROOT / "solution" / name, f"ps1/{name}")
    compose("import_exit", folder).rename(export / "submission_1004")
    (export / "submission_1005").mkdir()
    (export / "submission_1999").mkdir()  # not in the metadata
    (export / "submission_metadata.yml").write_text(METADATA)
    path = folder / "export.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for file in sorted(export.rglob("*")):
            archive.write(file, file.relative_to(folder))
    return path, export


def regrade(export, out, *extra, wait=True):
    command = [sys.executable, str(ROOT / "tools" / "regrade.py"), str(export), "--out", str(out), "--only", *SELECT,
               *extra]
    if not wait:
        return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)


def grade_alone(upload, work):
    """What run_autograder would do for this upload: collect, grade alone, finish."""
    collect_submission.collect(upload, work / "submission", work / "notes.txt")
    results = work / "results.json"
    subprocess.run([sys.executable, str(ROOT / "grader.py"), "--submission", str(work / "submission"), "--results",
                    str(results), *SELECT], cwd=ROOT, capture_output=True, timeout=300)
    collect_submission.finish(results, work / "notes.txt", None, ROOT / "tests" / "points.json")
    return json.loads(results.read_text())


def test_bad_exports_say_what_is_wrong(tmp_path):
    (tmp_path / "file.txt").write_text("hello")
    done = regrade(tmp_path / "file.txt", tmp_path / "out")
    assert done.returncode == 2 and "neither a zip file nor a folder" in done.stderr, done
    (tmp_path / "empty").mkdir()
    done = regrade(tmp_path / "empty", tmp_path / "out")
    assert done.returncode == 2 and "no submission_metadata.yml" in done.stderr, done


def test_regrade_resumes_and_matches_grading_each_alone(tmp_path, capsys, manifest):
    archive, export = make_export(tmp_path)
    out = tmp_path / "out"
    started = time.monotonic()
    first = regrade(archive, out, "--jobs", "1", wait=False)
    deadline = time.monotonic() + 300
    while not list((out / "results").glob("*.json")) and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.2)
    first.send_signal(signal.SIGTERM)
    output = first.communicate(timeout=120)[0]
    assert first.returncode == 130 and "run the same command again" in output, output
    finished = {path.name: path.stat().st_mtime_ns for path in (out / "results").glob("*.json")}
    assert 1 <= len(finished) < 5 and not list((out / "results").glob(".*")), (finished, output)

    second = regrade(archive, out, "--jobs", "2")
    seconds = time.monotonic() - started
    assert second.returncode == 0, second.stdout + second.stderr
    log = second.stdout + second.stderr
    assert f"{len(finished)} of 5 submissions already graded" in log, log
    assert "submission_1999: a folder that submission_metadata.yml does not name: not graded" in log, log
    assert "submission_1001: broken.zip is not a zip archive" in log, log
    assert {path.name: path.stat().st_mtime_ns for path in (out / "results").glob("*.json")
            if path.name in finished} == finished  # not graded again

    regraded = {path.stem: json.loads(path.read_text()) for path in (out / "results").glob("*.json")}
    assert sorted(regraded) == ["1001", "1002", "1003", "1004", "1005"]
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        solo = {sid: pool.submit(grade_alone, export / f"submission_{sid}", tmp_path / f"alone-{sid}")
                 for sid in regraded}
    for submission_id, results in regraded.items():
        validate_results(results)
        alone = solo[submission_id].result()
        assert results["score"] == alone["score"], submission_id
        assert {t["number"]: t["score"] for t in results["tests"]} == {t["number"]: t["score"] for t in alone["tests"]}
    points = {q: sum(t["points"] for t in manifest["tests"].values() if t["question"] == q) for q in SELECT}
    expected = [points["1a"] + points["2a"], points["1a"], points["1a"] + points["2a"], 0.0, 0.0]
    assert [regraded[s]["score"] for s in ("1001", "1002", "1003", "1004", "1005")] == expected

    rows = {row["submission_id"]: row for row in csv.DictReader(open(out / "scores.csv"))}
    assert rows["1003"]["names"] == "Cy Zip; Di Group" and rows["1003"]["sids"] == "3; 4", rows["1003"]
    assert rows["1003"]["emails"] == "cy@example.edu; di@example.edu" and rows["1003"]["created_at"]
    assert (rows["1002"]["score"], rows["1002"]["1a"], rows["1002"]["2a"], rows["1002"]["1b"]) == (
        f"{points['1a']:g}", f"{points['1a']:g}", "0", ""), rows["1002"]
    items = {row["test"]: row for row in csv.DictReader(open(out / "tests.csv"))}
    assert set(items) == {"1a-0-basic", "1a-1-hidden", "2a-0-basic", "2a-1-hidden"}
    assert items["2a-0-basic"]["lost_points"] == "3" and items["1a-0-basic"]["lost_points"] == "2", items
    assert float(items["1a-0-basic"]["mean_score"]) == pytest.approx(0.5 * 3 / 5)
    assert items["2a-0-basic"]["most_frequent_failure"], items
    assert (out / "histogram.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with capsys.disabled():
        print(f"\nregrade test: interrupted run and resumed run of 5 submissions ({' '.join(SELECT)}) in "
              f"{seconds:.0f} s; uptime: {os.getloadavg()[0]:.1f}")
