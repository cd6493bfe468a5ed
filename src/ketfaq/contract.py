"""The response contract of ``POST /api/ask``: the answer kinds and the response model.

This module owns the vocabulary. The fixed texts per kind live in :mod:`ketfaq.messages`, the
evaluation's labels and the web page's classes are derived from :class:`Kind` (a test fails
when the page drifts). docs/ARCHITECTURE.md shows how to add a kind.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field, StrictBool

__all__ = ["AnswerResponse", "ErrorBody", "FeedbackRequest", "FeedbackResult", "Highlight", "Kind", "Passage", "Source", "error_responses"]


class Kind(StrEnum):
    """What kind of answer a visitor gets; each has a fixed notice and referral."""

    ANSWER = "answer"  # passages that answer the question
    PERSONAL_ADVICE = "personal_advice"  # about the visitor's own case: general passages + "ask your clinician"
    NO_MATCH = "no_match"  # in topic, but no passage answers it (staff see it in the unanswered review)
    OUT_OF_SCOPE = "out_of_scope"  # not about ketamine therapy for anxiety, or not a question for us
    CRISIS = "crisis"  # emergency referral only, before retrieval


class Source(BaseModel):
    """Where a passage comes from."""

    doc_id: str
    title: str
    section: str
    url: str | None


class Highlight(BaseModel):
    """Character offsets, within the passage text, of the sentence that best matches."""

    start: int = Field(ge=0)
    end: int = Field(ge=0)


class Passage(BaseModel):
    """A verbatim slice of an article."""

    id: str | None = Field(None, description="the passage's id in this index version (named in feedback)")
    text: str
    source: Source
    score: float = Field(description="cosine similarity to the question; higher is better")
    highlight: Highlight | None = None


class AnswerResponse(BaseModel):
    """What every answer carries: its kind, verbatim passages, the disclaimer and a referral."""

    kind: Kind
    question: str
    passages: list[Passage]
    disclaimer: str
    referral: str
    notice: str = Field(description="a short fixed sentence introducing the answer")
    index_version: str
    language: str = "en"
    check_in: str | None = Field(
        None, description="a fixed line with the crisis resources, added when the message worries "
        "the safety gate without being a crisis; null otherwise")


# The kinds an answer can take feedback on: every kind but crisis.
FeedbackKind = StrEnum("FeedbackKind", {k.name: k.value for k in Kind if k != Kind.CRISIS})


class FeedbackRequest(BaseModel):
    """The body of ``POST /api/feedback``: a visitor's verdict on one answer they got."""

    question: str = Field(min_length=1, max_length=20_000, description="the question as asked")
    kind: FeedbackKind = Field(description="the answer's kind; crisis answers take no feedback")
    index_version: str = Field(min_length=1, max_length=100)
    passage_ids: list[str] = Field(default_factory=list, max_length=10)
    helpful: StrictBool  # "helpful": 0 is not a verdict
    comment: str | None = Field(None, max_length=500, description="optional; redacted before it is stored")


class FeedbackResult(BaseModel):
    recorded: bool


class ErrorBody(BaseModel):
    """Every error the API returns (4xx and 5xx): one sentence a person can act on."""

    detail: str


_ERROR_MEANINGS = {
    401: "A valid admin bearer token is required",
    404: "Not found (admin routes: admin is disabled, no KETFAQ_ADMIN_TOKEN)",
    409: "The request conflicts with the current state",
    413: "Request body over max_body_bytes",
    422: "The request could not be used; `detail` says why and what to send",
    429: "Too many requests from this client; see Retry-After",
    503: "The published index cannot be loaded; the old one is still served",
}


def error_responses(*codes: int) -> dict[int | str, dict]:
    """OpenAPI ``responses`` for ``codes``, all with the :class:`ErrorBody` shape."""
    return {code: {"model": ErrorBody, "description": _ERROR_MEANINGS[code]} for code in codes}
