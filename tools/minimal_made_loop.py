"""The smallest training run of MADE: the yardstick of the library's memory (issue 20, point 5).

    /usr/bin/time -v python tools/minimal_made_loop.py   # --train-limit, --test-limit, --hidden, --max-steps, --n-samples

The same work as ``python -m src train made --impl solution --hidden 500 --train-limit 20000 --epochs 1
--test-limit 10000 --n-samples 16`` without validation, checkpoints or figures: the reference MADE, the
first N images of data/binarized_mnist.npz, one epoch of Adam (batch 100, lr 3e-3), the NLL of the
test images, 16 samples.  No torchvision, matplotlib or tqdm.  ``staff_tests/test_library.py`` compares
the library's peak memory with this script's on a smaller run, in the same test.
"""
import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "solution"))
from made import MADE  # noqa: E402  (after the path insert above)

parser = argparse.ArgumentParser()
parser.add_argument("--train-limit", type=int, default=20000)
parser.add_argument("--test-limit", type=int, default=10000)
parser.add_argument("--hidden", type=int, default=500)
parser.add_argument("--max-steps", type=int, help="stop the epoch after this many steps")
parser.add_argument("--n-samples", type=int, default=16)
args = parser.parse_args()

with np.load(ROOT / "data" / "binarized_mnist.npz") as npz:
    train_bits, test_bits = npz["train"][:args.train_limit], npz["test"][:args.test_limit]
train_x = torch.from_numpy(np.unpackbits(train_bits, axis=1, count=784)).float()
test_x = torch.from_numpy(np.unpackbits(test_bits, axis=1, count=784)).float()
torch.manual_seed(0)
model = MADE(784, [args.hidden], 784, num_masks=1, natural_ordering=True, seed=0)
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
for batch in torch.randperm(len(train_x)).split(100)[:args.max_steps]:
    loss = -model.log_prob(train_x[batch]).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
with torch.no_grad():
    nll = -torch.cat([model.log_prob(x) for x in test_x.split(500)]).double().mean().item()
samples = model.sample(args.n_samples, generator=torch.Generator().manual_seed(0))
print(f"test NLL {nll:.2f} nats on {len(test_x)} images; {len(samples)} samples")
