"""Train the iris classifier and save it with joblib.

Run as ``python -m ml_service.train --out model.joblib``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import joblib
import pandas as pd
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from ml_service import FEATURES


def load_data() -> tuple[pd.DataFrame, pd.Series]:
    """Iris as a frame whose columns are named like the API's fields."""
    bunch = load_iris(as_frame=True)
    frame: pd.DataFrame = bunch.frame
    # Columns in FEATURES order, named like the API's fields: serve builds its input rows
    # from FEATURES, so both sides agree on the order the model learned.
    X = frame.drop(columns="target")
    X.columns = list(FEATURES)
    y = frame["target"].map(dict(enumerate(bunch.target_names)))
    return X, y


def train(seed: int = 0) -> Pipeline:
    """Fit a scaled logistic regression on the whole data set."""
    X, y = load_data()
    return fit(X, y, seed)


def fit(X: pd.DataFrame, y: pd.Series, seed: int = 0) -> Pipeline:
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=seed))
    # Fit on a plain array: the serve environment has no pandas, and a model fitted on a frame
    # warns about missing feature names on every array it is asked to predict.
    model.fit(X.to_numpy(), y.to_numpy())
    return model


def evaluate(seed: int = 0, test_size: float = 0.3) -> float:
    """Accuracy on a held-out split, so a regression in a dependency shows up as a number."""
    X, y = load_data()
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, random_state=seed, stratify=y
    )
    return float(fit(X_train, y_train, seed).score(X_test.to_numpy(), y_test.to_numpy()))


def save(model: Pipeline, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, path)
    return path


def load(path: str | Path) -> Pipeline:
    # joblib unpickles: only load model files this project wrote itself.
    model: Pipeline = joblib.load(path)
    return model


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("model.joblib"), help="where to write")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    accuracy = evaluate(args.seed)
    path = save(train(args.seed), args.out)
    print(f"held-out accuracy {accuracy:.3f}; model written to {path}")


if __name__ == "__main__":
    main()
