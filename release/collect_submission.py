"""Gradescope helper of run_autograder: find the student's files, and make sure results.json exists.

    python3 collect_submission.py collect UPLOAD_DIR TARGET_DIR --notes NOTES
    python3 collect_submission.py finish RESULTS_JSON --notes NOTES --log LOG

``collect`` looks for ``autoregressive.py``, ``made.py`` and ``pixelcnn.py`` in
what the student uploaded (``/autograder/submission``): loose files, files in a
folder at any depth, or a zip archive (with or without folders inside, also a
zip inside a folder).  macOS debris (``__MACOSX/``, ``._*``) is ignored.  When
the files lie in several places, the folder that holds the most of them wins
(ties: loose files before zipped ones, then the shallowest, then by name), and a
file missing there is taken from the shallowest other place.  The chosen files
are copied into TARGET_DIR (emptied first); NOTES receives one line per file
saying where it came from, or that it is missing.

``finish`` makes sure RESULTS_JSON is a valid Gradescope results file: if the
grader wrote one, the notes are put before its ``output``; if it did not (it
crashed, or was killed), a minimal one is written: score 0 and an ``output``
that says the autograder failed (with the end of LOG for the staff).

Only the Python standard library is used, so this works even when the grading
environment is broken.
"""
import argparse
import json
import os
import shutil
import stat
import sys
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

REQUIRED = ("autoregressive.py", "made.py", "pixelcnn.py")
MAX_ZIP_MEMBERS = 10_000
MAX_ZIP_BYTES = 200 * 1024 * 1024
MAX_ZIP_NESTING = 2
JUNK_DIRS = {"__MACOSX", "__pycache__", ".git", ".ipynb_checkpoints"}


def _is_junk(name):
    return name in JUNK_DIRS or name.startswith("._") or name == ".DS_Store"


class Candidate:
    def __init__(self, path, shown, depth, zipped):
        self.path, self.shown, self.depth, self.zipped = Path(path), shown, depth, zipped
        self.folder = str(PurePosixPath(shown).parent)

    def rank(self):
        return (self.zipped, self.depth, self.shown)


def _extract_zip(archive, target):
    """Extract the regular files of ``archive`` into ``target`` safely (no absolute paths, no ``..``)."""
    extracted, total = [], 0
    with zipfile.ZipFile(archive) as zf:
        members = zf.infolist()
        if len(members) > MAX_ZIP_MEMBERS:
            raise ValueError(f"more than {MAX_ZIP_MEMBERS} files")
        for member in members:
            name = PurePosixPath(member.filename.replace("\\", "/"))
            if member.is_dir() or name.is_absolute() or ".." in name.parts or not name.parts:
                continue
            if stat.S_ISLNK(member.external_attr >> 16):
                continue
            if any(_is_junk(part) for part in name.parts):
                continue
            total += member.file_size
            if total > MAX_ZIP_BYTES:
                raise ValueError(f"more than {MAX_ZIP_BYTES // 2**20} MB uncompressed")
            destination = Path(target, *name.parts)
            destination.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(member) as source, open(destination, "wb") as sink:
                shutil.copyfileobj(source, sink)
            extracted.append(destination)
    return extracted


def find_candidates(upload_dir, scratch, notes, prefix="", depth=0, zipped=False, nesting=0):
    """Every file of the upload (and of its zips) whose name is a required one, case-insensitively."""
    found = []
    wanted = {name.lower(): name for name in REQUIRED}
    for folder, dirs, files in os.walk(upload_dir, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not _is_junk(d) and not os.path.islink(os.path.join(folder, d)))
        relative = Path(folder).relative_to(upload_dir)
        level = depth + len(relative.parts)
        for name in sorted(files):
            path = Path(folder) / name
            if _is_junk(name) or path.is_symlink() or not path.is_file():
                continue
            inside = (relative / name).as_posix()
            shown = f"{prefix}/{inside}" if prefix else inside
            if name.lower() in wanted:
                candidate = Candidate(path, shown, level, zipped)
                candidate.name = wanted[name.lower()]
                found.append(candidate)
            elif name.lower().endswith(".zip") and nesting < MAX_ZIP_NESTING:
                target = Path(tempfile.mkdtemp(dir=scratch))
                try:
                    _extract_zip(path, target)
                except (zipfile.BadZipFile, ValueError, OSError, RuntimeError, NotImplementedError) as error:
                    notes.append(f"could not open the archive {shown}: {error}")
                    continue
                found += find_candidates(target, scratch, notes, prefix=shown, depth=level + 1, zipped=True,
                                         nesting=nesting + 1)
    return found


def choose(candidates):
    """``{required name: Candidate}``: the files to grade."""
    by_folder = {}
    for candidate in candidates:
        by_folder.setdefault(candidate.folder, {}).setdefault(candidate.name, []).append(candidate)

    def folder_rank(item):
        folder, files = item
        best = min((c for group in files.values() for c in group), key=Candidate.rank)
        return (-len(files), best.zipped, best.depth, folder)

    chosen = {}
    if by_folder:
        _, files = min(by_folder.items(), key=folder_rank)
        for name, group in files.items():
            chosen[name] = min(group, key=Candidate.rank)
    for name in REQUIRED:
        if name not in chosen:
            others = [c for c in candidates if c.name == name]
            if others:
                chosen[name] = min(others, key=Candidate.rank)
    return chosen


def collect(upload_dir, target_dir, notes_path=None):
    upload_dir, target_dir = Path(upload_dir), Path(target_dir)
    notes = []
    if target_dir.exists():
        shutil.rmtree(target_dir)
    target_dir.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as scratch:
        candidates = find_candidates(upload_dir, scratch, notes) if upload_dir.is_dir() else []
        chosen = choose(candidates)
        for name in REQUIRED:
            if name in chosen:
                candidate = chosen[name]
                shutil.copyfile(candidate.path, target_dir / name)
                os.chmod(target_dir / name, 0o644)
                others = [c.shown for c in candidates if c.name == name and c is not candidate]
                line = f"{name}: graded the file {candidate.shown}"
                if others:
                    line += f" (also uploaded, not graded: {', '.join(others)})"
                notes.append(line)
            else:
                notes.append(f"{name}: NOT FOUND in your submission, so every question of that file scores 0")
    os.chmod(target_dir, 0o755)
    text = "\n".join(notes) + "\n"
    print(text, end="")
    if notes_path:
        Path(notes_path).write_text(text)
    return chosen


def _valid(results):
    return (isinstance(results, dict) and isinstance(results.get("tests"), list)
            and all(isinstance(t, dict) and "name" in t and "score" in t and "max_score" in t
                    for t in results["tests"]))


def finish(results_path, notes_path=None, log_path=None, manifest_path=None):
    """Make sure ``results_path`` holds a valid results file; return True if the grader wrote it."""
    results_path = Path(results_path)
    notes = Path(notes_path).read_text().strip() if notes_path and Path(notes_path).exists() else ""
    try:
        results = json.loads(results_path.read_text())
    except (OSError, ValueError):
        results = None
    if _valid(results):
        if notes:
            output = results.get("output", "")
            results["output"] = f"Files graded:\n{notes}\n\n{output}".rstrip() + "\n"
        _write(results_path, results)
        return True
    log = ""
    if log_path and Path(log_path).exists():
        log = Path(log_path).read_text(errors="replace")[-3000:]
    output = ("The autograder failed before it could write your results (this is not a grade of your work): "
              "please tell the course staff.  Score: 0 for now.\n")
    if notes:
        output += f"\nFiles found:\n{notes}\n"
    _write(results_path, {"score": 0, "output": output, "tests": _zero_tests(manifest_path),
                          "extra_data": {"autograder_error": True, "log_tail": log}})
    return False


def _zero_tests(manifest_path):
    """Every coding test of the manifest with score 0 (so that students see what was not graded)."""
    try:
        manifest = json.loads(Path(manifest_path).read_text())
        return [{"name": test_id, "number": test_id, "score": 0.0, "max_score": float(test["points"]),
                 "status": "failed", "output": "not graded: the autograder failed (not your code)"}
                for test_id, test in manifest["tests"].items() if test.get("type") == "coding"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return []


def _write(path, results):
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(results, indent=2) + "\n")
    os.replace(temporary, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("collect")
    p.add_argument("upload_dir")
    p.add_argument("target_dir")
    p.add_argument("--notes")
    p = commands.add_parser("finish")
    p.add_argument("results")
    p.add_argument("--notes")
    p.add_argument("--log")
    p.add_argument("--manifest", help="tests/points.json, to list the ungraded tests in a fallback results file")
    args = parser.parse_args(argv)
    if args.command == "collect":
        collect(args.upload_dir, args.target_dir, args.notes)
        return 0
    return 0 if finish(args.results, args.notes, args.log, args.manifest) else 1


if __name__ == "__main__":
    sys.exit(main())
