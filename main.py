"""Train the README example on scikit-learn's digits and print per-epoch progress and test accuracy."""

from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from framework import Dense, Model, ReLU
from framework.losses import SoftmaxCrossEntropy
from framework.optimizers import SGD


def main() -> None:
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X / 16.0, y, test_size=0.2, stratify=y, random_state=0)
    model = Model([Dense(64, 32), ReLU(), Dense(32, 10)], seed=0)
    model.compile(loss=SoftmaxCrossEntropy(), optimizer=SGD(lr=0.05, momentum=0.9))
    print(model.summary())
    model.fit(X_train, y_train, epochs=40, batch_size=32, validation_data=(X_test, y_test), seed=0, verbose=1)
    print(f"test accuracy: {model.evaluate(X_test, y_test)['accuracy']:.4f}")


if __name__ == "__main__":
    main()
