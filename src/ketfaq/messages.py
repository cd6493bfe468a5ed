"""Every fixed text a visitor can read, in one place: the disclaimer and one referral per kind.

Nothing here is generated; staff and clinicians review these texts like article text.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["CHECK_IN", "DISCLAIMER", "Kind", "KINDS", "referral_for", "NOTICES"]

Kind = Literal["answer", "personal_advice", "no_match", "out_of_scope", "crisis"]
KINDS: tuple[str, ...] = ("answer", "personal_advice", "no_match", "out_of_scope", "crisis")

DISCLAIMER = (
    "ketfaq shows passages from this clinic's articles for general information only. "
    "It is not medical advice and cannot tell you what is right for you. Always talk to a "
    "qualified clinician about your own health, and never start, stop or change a medicine "
    "without them."
)

_REFERRALS: dict[str, str] = {
    "answer": (
        "Questions about your own situation? A clinician at the clinic can talk them through "
        "with you."
    ),
    "personal_advice": (
        "That depends on your own health and history, so only your own clinician or prescriber "
        "can answer it safely. Please ask them before you change anything; the passages below "
        "are general information, not an answer for you."
    ),
    "no_match": (
        "Our articles don't answer that well enough for us to show you a passage. A clinician "
        "at the clinic can answer it for you."
    ),
    "out_of_scope": (
        "I can only show passages from this clinic's articles about ketamine therapy for "
        "anxiety, in English. For anything else, please contact the clinic and a member of "
        "the team will help. / Solo puedo mostrar textos de los artículos de esta clínica sobre "
        "la terapia con ketamina para la ansiedad, en inglés. Para cualquier otra cosa, "
        "comuníquese con la clínica y un miembro del equipo le ayudará."
    ),
}

# Added to an ordinary answer when the message sounds worn down or hopeless without being a crisis
# (the safety gate's uncertain band); fixed text, never generated.
CHECK_IN = (
    "It sounds like things may be hard right now. If you ever feel you can't keep yourself safe, "
    "call or text 988 (Suicide & Crisis Lifeline), any time. In an emergency, call 911."
)

# Short, kind sentences the web page shows above a referral; never medical content.
NOTICES: dict[str, str] = {
    "answer": "Here is what the clinic's articles say.",
    "personal_advice": "This is a question for your own clinician.",
    "no_match": "I couldn't find a passage that answers this.",
    "out_of_scope": "That's outside what I can help with.",
    "crisis": "Thank you for telling me. You deserve help right now.",
}


def referral_for(kind: str, *, crisis_referral: str) -> str:
    """The fixed referral for ``kind``; the crisis one comes from settings (country-specific)."""
    if kind == "crisis":
        return crisis_referral
    try:
        return _REFERRALS[kind]
    except KeyError:
        raise ValueError(f"unknown kind {kind!r}; valid kinds: {', '.join(KINDS)}") from None
