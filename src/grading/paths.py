"""Where the grader's files are, relative to the checkout (both sides; no torch)."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the checkout: grader.py, src/, tests/, submission/
GRADING = ROOT / "src" / "grading"
MANIFEST_PATH = ROOT / "tests" / "points.json"
PUBLIC_FIXTURES = ROOT / "tests" / "fixtures" / "public.pt"
GRADING_SLICE = ROOT / "tests" / "data" / "mnist_slice.pt"  # the learning probes' MNIST slice
PROBES_DIR = GRADING / "worker" / "probes"
