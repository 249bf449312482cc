"""Hidden tests of Questions 4b and 4c: your MADE and PixelCNN learn binarised MNIST.

As the public tests (tests/test_q4_learning.py), with a longer training budget
and a threshold on the test NLL (the mean of -model.log_prob(x) over the 500 test
images of tests/data/mnist_slice.pt):

* the independent-pixel model fit on the same 2000 training images: 200.5 nats;
* the reference solution (over the seeds 0..4): MADE 140.8-144.3, PixelCNN 105.5-109.0;
* a model whose weights cannot train (only the biases do): about 300 nats.

The thresholds sit halfway between the reference and the independent-pixel
baseline, so a correct implementation passes with a margin of ~25 nats
(10 times the spread over seeds), whatever its random draws.
"""
from src.grading.host.graded import graded
from src.grading.host.judging.checks import fail
from src.grading.host.judging.q4 import check_training, describe_training, other_findings

MADE_THRESHOLD = 170.0
PIXELCNN_THRESHOLD = 155.0
MADE_HIDDEN = dict(seed=0, steps=150, batch_size=100, lr=1e-2, hidden_sizes=[256], num_train=2000, num_test=500)
PIXELCNN_HIDDEN = dict(seed=0, steps=60, batch_size=32, lr=1e-2, channels=16, num_blocks=2, kernel_size=7,
                       num_train=2000, num_test=500)
TIMEOUT_S = 120


@graded("4b-1-hidden")
def test_made_learns_hidden(student, known_problems):
    out = student.run("q4.made_learning", timeout_s=TIMEOUT_S, **MADE_HIDDEN)
    case = describe_training("MADE(784, [256], 784)", MADE_HIDDEN)
    _, nll = check_training(out, what="MADE", case=case, num_test=500)
    if not nll < MADE_THRESHOLD:
        fail("MADE", case, f"test NLL {nll:.1f} nats, should be below {MADE_THRESHOLD:g} (the independent-pixel "
                           f"model gets 200.5)" + other_findings(known_problems("2a", "2b")))


@graded("4c-1-hidden")
def test_pixelcnn_learns_hidden(student, known_problems):
    out = student.run("q4.pixelcnn_learning", timeout_s=TIMEOUT_S, **PIXELCNN_HIDDEN)
    case = describe_training("PixelCNN(1, 2, channels=16, num_blocks=2, kernel_size=7)", PIXELCNN_HIDDEN)
    _, nll = check_training(out, what="PixelCNN", case=case, num_test=500)
    if not nll < PIXELCNN_THRESHOLD:
        fail("PixelCNN", case, f"test NLL {nll:.1f} nats, should be below {PIXELCNN_THRESHOLD:g} (the "
                               f"independent-pixel model gets 200.5)" + other_findings(known_problems("3a", "3b")))
