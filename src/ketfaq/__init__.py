"""ketfaq: a patient FAQ bot that answers only with verbatim passages from a clinic's articles."""

__version__ = "0.1.0"
