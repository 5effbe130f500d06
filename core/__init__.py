"""affectlab: emotion recognition with soft labels (annotate, train, explore, live)."""

__version__ = "0.1.0"
