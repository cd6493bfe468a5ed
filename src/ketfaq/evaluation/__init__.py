"""Evaluate ketfaq on the QA test set: retrieval, routing and invariant metrics, report and gate."""

from ketfaq.evaluation.qa import DEFAULT_QA_FILES, QARecord, collapse, load_qa, validate_qa

__all__ = ["DEFAULT_QA_FILES", "QARecord", "collapse", "load_qa", "validate_qa"]
