"""Check that the written part builds: the student template and the staff answer key.

Both are compiled with latexmk (pdflatex) in non-interactive mode
(``-interaction=nonstopmode -halt-on-error``) in a temporary copy of
``written/`` and ``staff/written_key/`` (same relative layout, so the key's
``../../written`` paths hold), never in the source folders.

    python tools/check_written.py                 # build both; exit 1 if either fails
    python tools/check_written.py --fake-figures  # also with a dummy PNG for every figure
    python tools/check_written.py --keep OUT      # copy main.pdf and key.pdf into OUT

Without a LaTeX toolchain (latexmk and pdflatex) it prints
``SKIPPED: latexmk not found`` (or ``SKIPPED: pdflatex not found``) and exits 0.
"""
import argparse
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WRITTEN = ROOT / "written"
KEY = ROOT / "staff" / "written_key"
# (name, folder relative to the copy's root, main file)
DOCUMENTS = (("template", "written", "main.tex"), ("key", "staff/written_key", "key.tex"))
BUILD_PRODUCTS = ("*.pdf", "*.aux", "*.log", "*.fls", "*.fdb_latexmk", "*.out", "*.toc", "*.synctex.gz")
LATEXMK_ARGS = ("-pdf", "-interaction=nonstopmode", "-halt-on-error", "-file-line-error")


def missing_toolchain():
    """Name of the first missing LaTeX program, or None when the toolchain is present."""
    for program in ("latexmk", "pdflatex"):
        if shutil.which(program) is None:
            return program
    return None


def figure_names(written=WRITTEN):
    """Figure names registered in written/library_commands.tex that are figures (not e.g. made_help)."""
    text = (written / "library_commands.tex").read_text()
    names = re.findall(r"^\\SetLibraryCommand\{([^}]*)\}\{", text, flags=re.M)
    used = set()
    for tex in written.rglob("*.tex"):
        used.update(re.findall(r"\\psfigure(?:\[[^\]]*\])?\{([^}]*)\}", tex.read_text()))
    return [name for name in names if name in used]


def tiny_png(path, width=8, height=8):
    """Write a valid grey-scale PNG (a checkerboard), without any imaging library."""
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
    rows = b"".join(b"\x00" + bytes(255 * ((x + y) % 2) for x in range(width)) for y in range(height))
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    Path(path).write_bytes(png)


def copy_sources(dest, fake_figures=False):
    """Copy written/ and staff/written_key/ (without build products) under dest."""
    ignore = shutil.ignore_patterns(*BUILD_PRODUCTS)
    shutil.copytree(WRITTEN, dest / "written", ignore=ignore)
    shutil.copytree(KEY, dest / "staff" / "written_key", ignore=ignore)
    figures = dest / "written" / "figures"
    if fake_figures:
        figures.mkdir(exist_ok=True)
        for name in figure_names():
            tiny_png(figures / f"{name}.png")
    return dest


def errors_from_log(log_path, limit=30):
    """The error lines of a LaTeX log (``! ...`` or ``file:line: ...``), with a little context."""
    if not log_path.exists():
        return []
    lines = log_path.read_text(errors="replace").splitlines()
    out = []
    for i, line in enumerate(lines):
        if line.startswith("!") or re.match(r"^[^\s:]+\.tex:\d+: ", line):
            out.extend(lines[i:i + 3])
    return out[:limit]


def build(root, name, folder, main, timeout=300):
    """Compile one document under root; return (ok, seconds, message)."""
    cwd = root / folder
    start = time.monotonic()
    try:
        result = subprocess.run(["latexmk", *LATEXMK_ARGS, main], cwd=cwd, capture_output=True,
                                text=True, errors="replace", timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, time.monotonic() - start, f"{name}: latexmk timed out after {timeout} s"
    seconds = time.monotonic() - start
    pdf = cwd / Path(main).with_suffix(".pdf")
    if result.returncode == 0 and pdf.exists():
        return True, seconds, f"{name}: OK ({folder}/{pdf.name}, {seconds:.1f} s)"
    details = errors_from_log(cwd / Path(main).with_suffix(".log")) or result.stdout.splitlines()[-20:]
    return False, seconds, f"{name}: FAILED ({folder}/{main}, exit {result.returncode})\n    " + "\n    ".join(details)


def check(fake_figures=False, keep=None, only=None):
    """Build the documents; return the process exit status (0 = all built, or skipped)."""
    missing = missing_toolchain()
    if missing:
        print(f"SKIPPED: {missing} not found")
        return 0
    failures = 0
    with tempfile.TemporaryDirectory(prefix="check_written_") as tmp:
        root = copy_sources(Path(tmp), fake_figures=fake_figures)
        for name, folder, main in DOCUMENTS:
            if only and name != only:
                continue
            ok, _, message = build(root, name, folder, main)
            print(message)
            failures += not ok
            if ok and keep:
                Path(keep).mkdir(parents=True, exist_ok=True)
                shutil.copy2(root / folder / Path(main).with_suffix(".pdf"), Path(keep))
    label = " (with dummy figures)" if fake_figures else ""
    print(("FAILED" if failures else "PASSED") + f": written part{label}")
    return 1 if failures else 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fake-figures", action="store_true",
                        help="put a dummy PNG for every figure into the copy, to test the \\includegraphics branch")
    parser.add_argument("--keep", metavar="DIR", help="copy the PDFs that were built into DIR")
    parser.add_argument("--only", choices=[name for name, _, _ in DOCUMENTS], help="build one document only")
    args = parser.parse_args(argv)
    return check(fake_figures=args.fake_figures, keep=args.keep, only=args.only)


if __name__ == "__main__":
    sys.exit(main())
