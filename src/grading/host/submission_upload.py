"""What a student uploads to Gradescope, read as Gradescope's autograder reads it (host side: the grader's process,
before any of the student's code runs; the Python standard library only, so that it works even when the grading
environment is broken).

Gradescope unpacks an uploaded zip; what it gets may be loose files, files in a folder at any depth, or zips
inside the upload (with folders inside, also a zip in a folder).  ``collect`` finds ``autoregressive.py``,
``made.py`` and ``pixelcnn.py`` there (names compared case-insensitively; macOS debris ``__MACOSX/`` and
``._*`` ignored).  When the files lie in several places, the folder that holds the most of them wins (ties:
loose files before zipped ones, then the shallowest, then by name), and a file missing there is taken from the
shallowest other place.  The chosen files are copied into one folder, which is graded; one note per file says
where it came from, what else of that name was uploaded, or that it is missing and what that costs.

``unpack_upload_zip`` is ``python grader.py --submission upload.zip``: the zip is unpacked as Gradescope would
(refused when a member would land outside the folder, or when it is far bigger than three .py files), then
collected the same way, so that a student grades the very upload they will send.
"""
import json
import os
import shutil
import stat
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from ..paths import MANIFEST_PATH

REQUIRED = ("autoregressive.py", "made.py", "pixelcnn.py")
JUNK_NAMES = {"__MACOSX", "__pycache__", ".git", ".ipynb_checkpoints", ".DS_Store"}
MAX_NESTED_ZIPS = 2  # zips inside zips inside the upload, at most
# zips found inside an upload (Gradescope's collection): generous, the files are small
MAX_NESTED_ZIP_MEMBERS = 10_000
MAX_NESTED_ZIP_BYTES = 200 * 1024 * 1024
# the zip a student grades locally: three .py files, perhaps with notebooks or figures beside them
MAX_UPLOAD_ZIP_MEMBERS = 1_000
MAX_UPLOAD_ZIP_BYTES = 50 * 1024 * 1024
UNREADABLE_ZIP = (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, RuntimeError, NotImplementedError,
                  EOFError)


class UploadError(Exception):
    """The upload cannot be graded as it is (a zip that is unsafe, too big or not a zip); the message says why."""


def is_junk(name):
    """macOS, git and Python debris, never a student's file."""
    return name in JUNK_NAMES or name.startswith("._")


class Candidate:
    """One uploaded file with a required name: ``path`` on disk, ``shown`` as the student named it in the upload."""

    def __init__(self, path, shown, name, depth, zipped):
        self.path, self.shown, self.name, self.depth, self.zipped = Path(path), shown, name, depth, zipped
        self.folder = str(PurePosixPath(shown).parent)

    def rank(self):
        return (self.zipped, self.depth, self.shown)


def _member_path(member):
    """The member's relative path, or None for one that would land outside the folder (absolute, ``..``)."""
    name = PurePosixPath(member.filename.replace("\\", "/"))
    if name.is_absolute() or ".." in name.parts or not name.parts or ":" in name.parts[0]:
        return None
    return name


def extract_zip(archive, target, *, max_members, max_bytes, refuse_unsafe):
    """Extract the regular files of ``archive`` into ``target``; return the paths of the skipped members.

    Members with an absolute path or ``..`` are refused (``UploadError``) with ``refuse_unsafe``, else skipped;
    links and debris are skipped.  More than ``max_members`` members or ``max_bytes`` uncompressed raise
    ``UploadError`` before anything is written.  Other errors of an unreadable zip propagate (``UNREADABLE_ZIP``).
    """
    skipped = []
    with zipfile.ZipFile(archive) as zf:
        members = zf.infolist()
        if len(members) > max_members:
            raise UploadError(f"it has {len(members)} files, more than {max_members}")
        total = sum(member.file_size for member in members)
        if total > max_bytes:
            raise UploadError(f"it unpacks to {total / 2**20:.0f} MB, more than {max_bytes // 2**20} MB")
        for member in members:
            name = _member_path(member)
            if name is None:
                if refuse_unsafe:
                    raise UploadError(f"its member {member.filename!r} would be written outside the folder it is "
                                      "unpacked in (an absolute path or '..')")
                skipped.append(member.filename)
                continue
            if member.is_dir() or any(is_junk(part) for part in name.parts):
                continue
            if stat.S_ISLNK(member.external_attr >> 16):
                skipped.append(member.filename)
                continue
            destination = Path(target, *name.parts)
            destination.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(member) as source, open(destination, "wb") as sink:
                shutil.copyfileobj(source, sink)
    return skipped


def find_candidates(upload_dir, scratch, notes, prefix="", depth=0, zipped=False, nesting=0):
    """Every file of the upload (and of its zips) whose name is a required one, case-insensitively; other .py
    files and unreadable zips get a line in ``notes``."""
    found = []
    wanted = {name.lower(): name for name in REQUIRED}
    for folder, dirs, files in os.walk(upload_dir, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not is_junk(d) and not os.path.islink(os.path.join(folder, d)))
        relative = Path(folder).relative_to(upload_dir)
        level = depth + len(relative.parts)
        for name in sorted(files):
            path = Path(folder) / name
            if is_junk(name) or path.is_symlink() or not path.is_file():
                continue
            inside = (relative / name).as_posix()
            shown = f"{prefix}/{inside}" if prefix else inside
            if name.lower() in wanted:
                found.append(Candidate(path, shown, wanted[name.lower()], level, zipped))
            elif name.lower().endswith(".zip") and nesting < MAX_NESTED_ZIPS:
                target = Path(tempfile.mkdtemp(dir=scratch))
                try:
                    extract_zip(path, target, max_members=MAX_NESTED_ZIP_MEMBERS, max_bytes=MAX_NESTED_ZIP_BYTES,
                                refuse_unsafe=False)
                except (UploadError, *UNREADABLE_ZIP) as error:
                    notes.append(f"could not open the archive {shown}: {error}")
                    continue
                found += find_candidates(target, scratch, notes, prefix=shown, depth=level + 1, zipped=True,
                                         nesting=nesting + 1)
            elif name.lower().endswith(".py"):
                notes.append(f"{shown}: not graded (the grader reads only {', '.join(REQUIRED)})")
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


def questions_needing(file_name, manifest_path=MANIFEST_PATH):
    """``(question ids, points, extra-credit points)`` of the coding questions whose code is in ``file_name``
    (tests/points.json), or ``((), 0, 0)`` when the manifest cannot be read."""
    try:
        manifest = json.loads(Path(manifest_path).read_text())
        questions = [q for q, entry in manifest["questions"].items()
                     if entry.get("type") == "coding" and entry.get("file") == file_name]
        tests = [t for t in manifest["tests"].values() if t.get("type") == "coding" and t.get("question") in questions]
        return (questions, sum(t["points"] for t in tests if not t.get("extra_credit")),
                sum(t["points"] for t in tests if t.get("extra_credit")))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return (), 0, 0


def missing_cost(file_name):
    """What a missing file costs, as ``"0 points for questions 2a, 2b, 2c and 4b, 10 points in all"``."""
    questions, points, extra = questions_needing(file_name)
    if not questions:
        return "0 points for every question of that file"
    listed = ", ".join(questions[:-1]) + f" and {questions[-1]}" if len(questions) > 1 else questions[0]
    extra = f" and {extra:g} of extra credit" if extra else ""
    return f"0 points for question{'s' if len(questions) > 1 else ''} {listed}, {points:g} points{extra} in all"


def collect(upload_dir, target_dir, notes_path=None, missing_note=None, shown_as=""):
    """Copy the files to grade from ``upload_dir`` into ``target_dir`` (emptied first).

    ``shown_as`` names ``upload_dir`` in the notes (``"upload.zip"``; default: paths relative to it).  Returns ``(chosen, notes)``: ``{required name: Candidate}`` and the lines for the student, also written to
    ``notes_path`` if given.  ``missing_note(name)`` is the line for a missing file (default: the autograder's
    "NOT FOUND" line).
    """
    upload_dir, target_dir = Path(upload_dir), Path(target_dir)
    missing_note = missing_note or (lambda name: f"{name}: NOT FOUND in your submission, so it is graded as "
                                                 f"missing: {missing_cost(name)}")
    notes = []
    if target_dir.exists():
        shutil.rmtree(target_dir)
    target_dir.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as scratch:
        candidates = find_candidates(upload_dir, scratch, notes, prefix=shown_as) if upload_dir.is_dir() else []
        chosen = choose(candidates)
        file_notes = []
        for name in REQUIRED:
            if name in chosen:
                candidate = chosen[name]
                shutil.copyfile(candidate.path, target_dir / name)
                os.chmod(target_dir / name, 0o644)
                others = [c.shown for c in candidates if c.name == name and c is not candidate]
                line = f"{name}: graded the file {candidate.shown}"
                if others:
                    line += f" (also uploaded, not graded: {', '.join(others)})"
                file_notes.append(line)
            else:
                file_notes.append(missing_note(name))
    notes = file_notes + notes
    os.chmod(target_dir, 0o755)
    if notes_path:
        Path(notes_path).write_text("\n".join(notes) + "\n")
    return chosen, notes


def unpack_upload_zip(zip_path, work_dir):
    """The folder to grade for the zip a student will upload: ``work_dir/upload`` holds the zip unpacked,
    ``work_dir/graded`` the three files collected from it.  Returns ``(graded folder, notes)``; raises
    ``UploadError`` for a zip that Gradescope's autograder could not read either, or that is unsafe to unpack."""
    zip_path, work_dir = Path(zip_path), Path(work_dir)
    upload, graded = work_dir / "upload", work_dir / "graded"
    upload.mkdir()
    try:
        skipped = extract_zip(zip_path, upload, max_members=MAX_UPLOAD_ZIP_MEMBERS, max_bytes=MAX_UPLOAD_ZIP_BYTES,
                              refuse_unsafe=True)
    except UploadError as error:
        raise UploadError(f"{zip_path.name} is refused: {error}; zip your three files, or the one folder that "
                          "holds them, again") from None
    except UNREADABLE_ZIP as error:
        raise UploadError(f"{zip_path.name} cannot be read as a zip ({error}); Gradescope's autograder "
                          "could not read it either") from None
    _, notes = collect(upload, graded, shown_as=zip_path.name, missing_note=lambda name: (
        f"{zip_path.name} has no {name}: Gradescope would grade {name} as missing: {missing_cost(name)}"))
    notes += [f"{zip_path.name}/{member}: not unpacked (a link)" for member in skipped]
    return graded, notes
