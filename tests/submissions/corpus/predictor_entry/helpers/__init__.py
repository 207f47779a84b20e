"""Helper package of the predictor.py submission."""
