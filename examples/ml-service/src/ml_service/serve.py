"""HTTP API for the iris classifier.

``uvicorn --factory ml_service.serve:app_from_env`` serves the model at ``$MODEL_PATH``.
Nothing is loaded at import time, so tests can build apps around models of their own.
"""

import os
from pathlib import Path

import joblib
import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field
from sklearn.pipeline import Pipeline

from ml_service import FEATURES

DEFAULT_MODEL_PATH = "/app/model.joblib"


class Measurements(BaseModel):
    """One flower, in centimetres."""

    # Unknown fields, NaN and infinity are rejected with a 422 rather than reaching the model.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    sepal_length: float = Field(ge=0)
    sepal_width: float = Field(ge=0)
    petal_length: float = Field(ge=0)
    petal_width: float = Field(ge=0)

    def as_row(self) -> np.ndarray:
        return np.array([[getattr(self, name) for name in FEATURES]], dtype=float)


class Prediction(BaseModel):
    label: str
    probability: float


def create_app(model_path: str | Path) -> FastAPI:
    # Load eagerly: a missing or broken model should stop the server at start, not fail
    # the first request.
    # joblib rather than ml_service.train.load: train imports pandas, which the serve
    # environment does not install. joblib unpickles, so load only models this project wrote.
    model: Pipeline = joblib.load(model_path)
    app = FastAPI(title="ml-service")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/predict")
    def predict(measurements: Measurements) -> Prediction:
        probabilities = model.predict_proba(measurements.as_row())[0]
        best = int(np.argmax(probabilities))
        return Prediction(label=str(model.classes_[best]), probability=float(probabilities[best]))

    return app


def app_from_env() -> FastAPI:
    """Factory for uvicorn's ``--factory``: the model path comes from ``$MODEL_PATH``."""
    return create_app(os.environ.get("MODEL_PATH", DEFAULT_MODEL_PATH))
