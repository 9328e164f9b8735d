"""The article's flow in Keras on the digits stand-in (tests/data/digits), from the same
initial weights and batch order as `gru train`: writes tests/data/digits/keras_reference.json,
which crates/gru-cli/tests/cli/train.rs compares `gru train` + `gru evaluate` against (final
test accuracy within 2 points).

The model, compile and fit are the article's (section 5): GRU(100) -> Dense(1, sigmoid),
optimizer='rmsprop', loss='binary_crossentropy', metrics=['accuracy'], epochs=10,
batch_size=128, with shuffle=False so that both sides see the same batches (in order, the last
one partial), from the weights in tests/data/digits/init_seed0.npz (written by
`gru train --hidden 100 --epochs 0 --seed 0 --out …`: Keras's initialisers, drawn by gru).

Run: KERAS_BACKEND=torch /work/pyenv-golden/bin/python scripts/digits_keras.py
"""

import json
import os
import pathlib

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402

DIR = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "digits"


def main():
    data = np.load(DIR / "digits.npz")
    init = np.load(DIR / "init_seed0.npz")
    x, y = data["x_train"], data["y_train"].astype("float32")
    xt, yt = data["x_test"], data["y_test"].astype("float32")
    model = keras.Sequential(
        [
            keras.Input(shape=x.shape[1:]),
            keras.layers.GRU(100),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.layers[0].set_weights([init["kernel"], init["recurrent_kernel"], init["bias"]])
    model.layers[1].set_weights([init["dense_kernel"], init["dense_bias"]])
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=10, batch_size=128, shuffle=False, verbose=2)
    loss, accuracy = model.evaluate(xt, yt, batch_size=128, verbose=0)
    out = {
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "epochs": 10,
        "batch_size": 128,
        "shuffle": False,
        "train_loss": [float(v) for v in history.history["loss"]],
        "train_accuracy": [float(v) for v in history.history["accuracy"]],
        "test_loss": float(loss),
        "test_accuracy": float(accuracy),
    }
    (DIR / "keras_reference.json").write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
