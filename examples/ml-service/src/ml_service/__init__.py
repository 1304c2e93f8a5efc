"""A tiny iris classifier: trained by :mod:`ml_service.train`, served by :mod:`ml_service.serve`."""

FEATURES: tuple[str, ...] = ("sepal_length", "sepal_width", "petal_length", "petal_width")
"""Input features, in the order the model was trained on."""
