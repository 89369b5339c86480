"""Measured methods: one module each. Importing this package registers them all."""

from methods import uniform  # noqa: F401  (registers uniform, uniform_lstm, uniform_features, uniform_lstm_features)
from methods import arnet, liteeval  # noqa: F401  (registers arnet, liteeval)
from methods import rsee, tlee, frameexit, dyngrid  # noqa: F401
