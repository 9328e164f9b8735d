"""Writes tests/data/digits/digits.npz: scikit-learn's bundled handwritten digits as
sequences for `gru train`, the stand-in for the article's `keras.datasets.sequence` (which
does not exist).

Each 8x8 image (pixels 0..16) becomes a sequence of its 8 rows: 8 steps of 8 features (pixel /
16), as recurrent-network tutorials read MNIST (28 steps of 28). Read as 64 steps of one pixel
the task is far harder: the article's compile and fit (RMSprop at Keras's default rate, 10
epochs of batches of 128, 110 steps) leave a GRU(100) near chance there (48 % on the test set),
while the rows reach about the article's 74.8 %. Labels:
`y_*` binary (1 for the digits 5 to 9, 0 for 0 to 4: the article's binary classifier), `d_*`
the digit itself (for `--head softmax --classes 10`). A fixed permutation (NumPy's
default_rng(0)) puts 1347 images in the training set and 450 in the test set (sklearn's
train_test_split proportions, 25 % test).

Provenance: sklearn.datasets.load_digits (scikit-learn, BSD-3-Clause), a copy of the test set
of the UCI "Optical Recognition of Handwritten Digits" data set (E. Alpaydin, C. Kaynak, 1998;
CC BY 4.0, https://doi.org/10.24432/C50P49).

Run: /work/pyenv-golden/bin/python scripts/make_digits.py
"""

import pathlib

import numpy as np
import sklearn
from sklearn.datasets import load_digits

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "digits"


def main():
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32).reshape(-1, 8, 8)
    d = digits.target.astype(np.int64)
    y = (d >= 5).astype(np.int64)
    order = np.random.default_rng(0).permutation(len(x))
    train, test = order[:1347], order[1347:]
    OUT.mkdir(parents=True, exist_ok=True)
    np.savez(
        OUT / "digits.npz",
        x_train=x[train],
        y_train=y[train],
        d_train=d[train],
        x_test=x[test],
        y_test=y[test],
        d_test=d[test],
    )
    print(f"scikit-learn {sklearn.__version__}: {len(train)} training and {len(test)} test "
          f"sequences of 8 steps of 8 features; positives {y[train].mean():.3f} / {y[test].mean():.3f}")


if __name__ == "__main__":
    main()
