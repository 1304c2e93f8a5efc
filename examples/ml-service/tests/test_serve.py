from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ml_service.serve import app_from_env, create_app
from ml_service.train import save, train

SETOSA = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save(train(seed=0), tmp_path_factory.mktemp("model") / "model.joblib")


@pytest.fixture
def client(model_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(model_path)) as client:
        yield client


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_predict(client: TestClient) -> None:
    response = client.post("/predict", json=SETOSA)
    assert response.status_code == 200
    body = response.json()
    assert body["label"] == "setosa"
    assert 0.5 < body["probability"] <= 1.0


@pytest.mark.parametrize(
    "payload",
    [
        {k: v for k, v in SETOSA.items() if k != "petal_width"},
        {**SETOSA, "petal_width": "wide"},
        {**SETOSA, "petal_width": -1.0},
        {**SETOSA, "colour": 1.0},
    ],
    ids=["missing", "not-a-number", "negative", "unknown-field"],
)
def test_bad_input_is_422(client: TestClient, payload: dict[str, object]) -> None:
    assert client.post("/predict", json=payload).status_code == 422


def test_app_from_env_reads_model_path(model_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_PATH", str(model_path))
    with TestClient(app_from_env()) as client:
        assert client.post("/predict", json=SETOSA).json()["label"] == "setosa"


def test_missing_model_fails_at_start(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        create_app(tmp_path / "absent.joblib")
