"""Where the grader's files are, relative to the checkout (both sides; no torch)."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the checkout: grader.py, src/, tests/, submission/
GRADING = ROOT / "src" / "grading"
MANIFEST_PATH = ROOT / "tests" / "points.json"
PUBLIC_FIXTURES = ROOT / "tests" / "fixtures" / "public.pt"
GRADING_SLICE = ROOT / "tests" / "data" / "mnist_slice.pt"  # the learning probes' MNIST slice
PROBES_DIR = GRADING / "worker" / "probes"


def modules_from_elsewhere(root=ROOT):
    """The loaded modules of the package ``src`` whose file is not in ``root/src``, as "name (file)".

    Empty unless something put another checkout's ``src`` on ``sys.path`` before this one's was imported:
    a grade must use only the code of the checkout whose grader.py runs (another one may be mid-edit)."""
    own = Path(root).resolve() / "src"
    found = []
    for name, module in list(sys.modules.items()):
        if name != "src" and not name.startswith("src."):
            continue
        file = getattr(module, "__file__", None)
        if file and not Path(file).resolve().is_relative_to(own):
            found.append(f"{name} ({file})")
    return sorted(found)
