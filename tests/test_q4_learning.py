"""Public tests of Questions 4b and 4c: your MADE and PixelCNN learn binarised MNIST.

The course library (``src.train.train_steps``: a fixed number of Adam steps on
``-model.log_prob(x).mean()``) trains your model on the first 2000 training
images of tests/data/mnist_slice.pt, from weights initialised after
``torch.manual_seed(0)``; the test NLL is the mean of ``-model.log_prob(x)``
over the slice's first test images.  These public tests train for a few steps
only; the hidden tests train longer and ask for a test NLL well below that of
the independent-pixel model (200.5 nats on this slice).
"""
from src.grading.host.graded import graded
from src.grading.host.judging.checks import fail
from src.grading.host.judging.q4 import check_training, describe_training, other_findings

BASIC_BOUND = 300.0  # nats; the uniform model gets 784 ln 2 = 543.4
MADE_BASIC = dict(seed=0, steps=25, batch_size=100, lr=1e-2, hidden_sizes=[256], num_train=2000, num_test=200)
PIXELCNN_BASIC = dict(seed=0, steps=15, batch_size=32, lr=1e-2, channels=16, num_blocks=2, kernel_size=7,
                      num_train=2000, num_test=200)


@graded("4b-0-basic")
def test_made_learns_basic(student, known_problems):
    out = student.run("q4.made_learning", **MADE_BASIC, before=True)
    case = describe_training("MADE(784, [256], 784)", MADE_BASIC)
    before, after = check_training(out, what="MADE", case=case, num_test=200)
    if not (after < before and after < BASIC_BOUND):
        fail("MADE", case, f"the test NLL went from {before:.1f} to {after:.1f} nats; after these steps it should "
                           f"be below {BASIC_BOUND:g} nats (the reference solution reaches about 235)"
             + other_findings(known_problems("2a", "2b")))


@graded("4c-0-basic")
def test_pixelcnn_learns_basic(student, known_problems):
    out = student.run("q4.pixelcnn_learning", **PIXELCNN_BASIC, before=True)
    case = describe_training("PixelCNN(1, 2, channels=16, num_blocks=2, kernel_size=7)", PIXELCNN_BASIC)
    before, after = check_training(out, what="PixelCNN", case=case, num_test=200)
    if not (after < before and after < BASIC_BOUND):
        fail("PixelCNN", case, f"the test NLL went from {before:.1f} to {after:.1f} nats; after these steps it "
                               f"should be below {BASIC_BOUND:g} nats (the reference solution reaches about 175)"
             + other_findings(known_problems("3a", "3b")))
