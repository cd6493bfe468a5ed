"""Every fixed text a visitor can read, in one place: the disclaimer and one referral per kind.

Nothing here is generated; staff and clinicians review these texts like article text.
"""

from __future__ import annotations

from ketfaq.contract import Kind

__all__ = ["CHECK_IN", "DISCLAIMER", "KINDS", "referral_for", "NOTICES"]

KINDS: tuple[Kind, ...] = tuple(Kind)

DISCLAIMER = (
    "ketfaq shows passages from this clinic's articles for general information only. "
    "It is not medical advice and cannot tell you what is right for you. Always talk to a "
    "qualified clinician about your own health, and never start, stop or change a medicine "
    "without them."
)

# The crisis referral is not here: it is country-specific, so it comes from settings.
_REFERRALS: dict[Kind, str] = {
    Kind.ANSWER: (
        "Questions about your own situation? A clinician at the clinic can talk them through "
        "with you."
    ),
    Kind.PERSONAL_ADVICE: (
        "That depends on your own health and history, so only your own clinician or prescriber "
        "can answer it safely. Please ask them before you change anything; the passages below "
        "are general information, not an answer for you."
    ),
    Kind.NO_MATCH: (
        "Our articles don't answer that well enough for us to show you a passage. A clinician "
        "at the clinic can answer it for you."
    ),
    Kind.OUT_OF_SCOPE: (
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
NOTICES: dict[Kind, str] = {
    Kind.ANSWER: "Here is what the clinic's articles say.",
    Kind.PERSONAL_ADVICE: "This is a question for your own clinician.",
    Kind.NO_MATCH: "I couldn't find a passage that answers this.",
    Kind.OUT_OF_SCOPE: "That's outside what I can help with.",
    Kind.CRISIS: "Thank you for telling me. You deserve help right now.",
}

# A kind without its fixed texts would fail on its first visitor: fail on import instead.
_missing = [k for k in Kind if k not in NOTICES or (k != Kind.CRISIS and k not in _REFERRALS)]
if _missing:  # pragma: no cover - a programming error, caught by the first test that imports this
    raise RuntimeError(f"messages.py: no notice or referral for {_missing}")


def referral_for(kind: Kind | str, *, crisis_referral: str) -> str:
    """The fixed referral for ``kind``; the crisis one comes from settings (country-specific)."""
    try:
        kind = Kind(kind)
    except ValueError:
        raise ValueError(f"unknown kind {kind!r}; valid kinds: {', '.join(KINDS)}") from None
    return crisis_referral if kind == Kind.CRISIS else _REFERRALS[kind]
