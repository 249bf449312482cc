"""Staff tests of the shipped MNIST files, src/data.py and the grading slice."""
import gzip
import hashlib
import importlib.util
import io
import os
import pickle
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from src import data  # noqa: E402

DATA = ROOT / "data"
SLICE = ROOT / "tests" / "data" / "mnist_slice.pt"


def _load_build_script():
    spec = importlib.util.spec_from_file_location("build_mnist", ROOT / "tools" / "build_mnist.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_mnist = _load_build_script()


def readme_rows():
    """``{relative path: (bytes, md5, sha256)}`` from the tables of data/README.md."""
    row = re.compile(r"^\| `([^`]+)` \| (\d+) \| `([0-9a-f]{32})` \| `([0-9a-f]{64})` \|$")
    rows = {}
    for line in (DATA / "README.md").read_text().splitlines():
        match = row.match(line)
        if match:
            name, size, md5, sha = match.groups()
            rows[name] = (int(size), md5, sha)
    return rows


def digests(payload):
    return len(payload), hashlib.md5(payload).hexdigest(), hashlib.sha256(payload).hexdigest()


def test_shipped_files_match_readme():
    rows = readme_rows()
    shipped = [f"MNIST/raw/{name}.gz" for name in data.RAW_FILES] + ["binarized_mnist.npz"]
    for name in shipped:
        assert digests((DATA / name).read_bytes()) == rows[name], name


def test_raw_files_are_canonical_mnist():
    data.ensure_raw_files()
    rows = readme_rows()
    for name in data.RAW_FILES:
        payload = (DATA / "MNIST" / "raw" / name).read_bytes()
        assert hashlib.md5(payload).hexdigest() == build_mnist.RAW_MD5[name], name
        assert digests(payload) == rows[f"MNIST/raw/{name}"], name


def test_ensure_raw_files_decompresses_atomically_once(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in data.RAW_FILES:
        shutil.copy(DATA / "MNIST" / "raw" / f"{name}.gz", raw)
    data.ensure_raw_files(tmp_path)
    for name in data.RAW_FILES:
        assert (raw / name).read_bytes() == gzip.decompress((raw / f"{name}.gz").read_bytes())
    assert sorted(p.name for p in raw.iterdir()) == sorted(data.RAW_FILES + tuple(f"{n}.gz" for n in data.RAW_FILES))
    before = {p.name: p.stat().st_mtime_ns for p in raw.iterdir()}
    data.ensure_raw_files(tmp_path)
    assert before == {p.name: p.stat().st_mtime_ns for p in raw.iterdir()}


def test_torchvision_reads_raw_files():
    from torchvision.datasets import MNIST

    data.ensure_raw_files()
    train, test = MNIST(DATA, train=True, download=False), MNIST(DATA, train=False, download=False)
    assert (len(train), len(test)) == (60000, 10000)
    assert train.targets[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert test.targets[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


@pytest.mark.parametrize("split,size", [("train", 50000), ("valid", 10000), ("test", 10000)])
def test_split_sizes_and_types(split, size):
    images, labels = data.mnist_images(split), data.mnist_labels(split)
    assert images.shape == (size, 28, 28) and images.dtype == torch.uint8
    assert labels.shape == (size,) and labels.dtype == torch.int64
    binary = data.binarized_mnist(split)
    assert binary.shape == (size, 1, 28, 28) and binary.dtype == torch.float32


def test_valid_is_the_end_of_the_training_set():
    from torchvision.datasets import MNIST

    full = MNIST(DATA, train=True, download=False).data
    assert torch.equal(torch.cat([data.mnist_images("train"), data.mnist_images("valid")]), full)


def test_binarized_values_and_mean():
    for split in ("valid", "test"):  # the training split is the same code on more data
        binary, grey = data.binarized_mnist(split), data.mnist_images(split)[:, None]
        assert set(binary.unique().tolist()) <= {0.0, 1.0}
        assert abs(binary.mean().item() - grey.double().mean().item() / 255) < 2e-3
        # Bernoulli(p / 255): black pixels are always 0, white pixels always 1.
        assert not binary[grey == 0].any() and binary[grey == 255].all()


def test_binarized_file_records_its_seed():
    with np.load(DATA / "binarized_mnist.npz") as archive:
        assert int(archive["seed"]) == build_mnist.BINARIZE_SEED
        assert archive["train"].shape == (60000, 98) and archive["test"].shape == (10000, 98)


def test_colored_mnist_is_deterministic_and_in_range():
    first = data.colored_mnist("test", levels=4, seed=0, limit=2000)
    assert first.shape == (2000, 3, 28, 28) and first.dtype == torch.int64
    assert first.min() == 0 and first.max() == 3
    assert torch.equal(first, data.colored_mnist("test", levels=4, seed=0, limit=2000))
    assert torch.equal(first[:10], data.colored_mnist("test", levels=4, seed=0)[:10])
    assert not torch.equal(first, data.colored_mnist("test", levels=4, seed=1, limit=2000))
    # Black background stays black; white digit pixels are lit to the top level in some channel.
    grey = data.mnist_images("test")[:2000]
    assert not first.permute(1, 0, 2, 3)[:, grey == 0].any()
    assert first.amax(dim=1)[grey == 255].eq(3).all()
    assert data.colored_mnist("valid", levels=2, limit=1000).max() == 1


def test_unknown_split_raises_value_error():
    for load in (data.mnist_images, data.mnist_labels, data.binarized_mnist, data.colored_mnist):
        with pytest.raises(ValueError) as error:
            load("validation")
        assert "\n" not in str(error.value) and "validation" in str(error.value)


def test_missing_dataset_raises_one_line_error(tmp_path):
    for call in (data.ensure_raw_files, lambda root: data.mnist_images("test", root=root),
                 lambda root: data.binarized_mnist("train", root=root)):
        with pytest.raises(data.DatasetMissingError) as error:
            call(tmp_path)
        assert isinstance(error.value, FileNotFoundError)
        message = str(error.value)
        # one line, the missing file, and how to get it back (in words a student can follow: the bundle has
        # no staff tools to rebuild it with)
        assert "\n" not in message and str(tmp_path) in message and "restore the data/ folder" in message


def test_make_loaders_limit_and_batches():
    loaders = data.make_loaders("binarized", batch_size=64, limit=300)
    assert {split: len(loader.dataset) for split, loader in loaders.items()} == {"train": 300, "valid": 300, "test": 300}
    batches = list(loaders["test"])
    assert [len(b) for b in batches] == [64, 64, 64, 64, 44]
    assert torch.equal(torch.cat(batches), data.binarized_mnist("test")[:300])
    with pytest.raises(ValueError):
        data.make_loaders("grey", batch_size=8)


def test_grading_slice_loads_without_pickle_and_matches():
    assert SLICE.stat().st_size < 3.5e6
    tensors = torch.load(SLICE, weights_only=True)
    for split, n, m in (("train", 2000, 400), ("test", 500, 100)):
        binary, color = tensors[f"binary_{split}"], tensors[f"color_{split}"]
        assert binary.shape == (n, 1, 28, 28) and binary.dtype == torch.uint8
        assert torch.equal(binary.float(), data.binarized_mnist(split)[:n])
        assert torch.equal(tensors[f"{split}_labels"], data.mnist_labels(split)[:n])
        assert color.shape == (m, 3, 28, 28) and color.dtype == torch.uint8
        expected = data.colored_mnist(split, levels=tensors["color_levels"], seed=tensors["color_seed"], limit=m)
        assert torch.equal(color.long(), expected)


def test_data_module_does_not_import_torchvision():
    code = "import sys; from src import data; data.binarized_mnist('test'); assert 'torchvision' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_restricted_unpickler_refuses_other_globals():
    class Exploit:
        def __reduce__(self):
            return os.system, ("true",)

    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        build_mnist.NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(Exploit()))).load()
