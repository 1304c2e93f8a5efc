from pathlib import Path

import numpy as np

from ml_service.train import evaluate, load, main, save, train


def test_held_out_accuracy_is_sane() -> None:
    # Iris is easy: anything below this means a broken pipeline, not an unlucky split.
    assert evaluate(seed=0) >= 0.9


def test_training_is_deterministic_for_a_seed() -> None:
    a, b = train(seed=1), train(seed=1)
    rows = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]])
    np.testing.assert_array_equal(a.predict_proba(rows), b.predict_proba(rows))


def test_save_load_round_trip(tmp_path: Path) -> None:
    model = train(seed=0)
    path = save(model, tmp_path / "nested" / "model.joblib")
    restored = load(path)
    rows = np.array([[5.1, 3.5, 1.4, 0.2], [5.9, 3.0, 4.2, 1.5], [6.7, 3.0, 5.2, 2.3]])
    assert list(restored.predict(rows)) == ["setosa", "versicolor", "virginica"]
    np.testing.assert_array_equal(restored.predict_proba(rows), model.predict_proba(rows))


def test_cli_writes_a_model(tmp_path: Path, capsys) -> None:
    out = tmp_path / "model.joblib"
    main(["--out", str(out), "--seed", "0"])
    assert out.is_file()
    assert "held-out accuracy" in capsys.readouterr().out
