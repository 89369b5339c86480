"""Measured methods: one module each. Importing this package registers them all."""

from methods import uniform  # noqa: F401  (registers uniform, uniform_lstm, uniform_features, uniform_lstm_features)
