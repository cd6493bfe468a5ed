"""Run QA records through the answer path (in-process or over HTTP) and record what came back."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from pydantic import ValidationError
from tqdm import tqdm

from ketfaq.corpus import load_corpus
from ketfaq.evaluation.metrics import Outcome
from ketfaq.evaluation.qa import QARecord
from ketfaq.messages import DISCLAIMER
from ketfaq.settings import Settings

__all__ = ["Config", "Client", "InProcessClient", "HttpClient", "RANK_K", "INDEX_SETTINGS",
           "check_invariants", "parse_compare", "run_records", "answerer_for"]

RANK_K = 5
# Settings that change what is in the index: comparing them needs an index of their own.
INDEX_SETTINGS = frozenset({"chunk_size", "chunk_overlap", "min_chunk_chars", "model_path", "model_name",
                            "corpus_dir", "encoder_backend"})
_MODES = ("hybrid", "dense", "bm25")


@dataclass(frozen=True, slots=True)
class Config:
    """One configuration to evaluate: a retrieval mode and/or settings overrides."""

    name: str
    mode: str | None = None
    overrides: dict[str, str] = field(default_factory=dict)

    @property
    def needs_index(self) -> bool:
        return bool(INDEX_SETTINGS & set(self.overrides))


def parse_compare(spec: str) -> list[Config]:
    """``"dense,bm25,hybrid"``, ``"chunk_size=500,700"`` or ``"dense+bm25_weight=0.3,hybrid"``.

    Commas separate configurations; ``+`` joins a mode and overrides into one; a bare value after
    ``key=value`` is another value for the same key.
    """
    configs: list[Config] = []
    last_key: str | None = None
    for token in (t.strip() for t in spec.split(",")):
        if not token:
            continue
        mode, overrides, name = None, {}, token
        for part in token.split("+"):
            if part in _MODES:
                mode = part
            elif "=" in part:
                key, value = (x.strip() for x in part.split("=", 1))
                if key not in Settings.model_fields:
                    raise ValueError(f"unknown setting {key!r} in --compare; see `ketfaq.settings.Settings`")
                overrides[key], last_key = value, key
            elif last_key is not None:
                overrides[last_key], name = part, f"{last_key}={part}"
            else:
                raise ValueError(f"--compare: {part!r} is neither a mode {_MODES} nor key=value")
        configs.append(Config(name, mode, overrides))
    if not configs:
        raise ValueError("--compare needs at least one configuration")
    return configs


class Client(Protocol):
    """Asks one question the way the API would; returns (label, response body or None, detail)."""

    def ask(self, question: str, *, k: int | None = None) -> tuple[str, dict | None, str]: ...


class InProcessClient:
    """The API path without HTTP: ``validate_question`` then ``Answerer.ask``."""

    def __init__(self, answerer, settings: Settings, mode: str | None = None) -> None:
        self.answerer, self.settings, self.mode = answerer, settings, mode

    def ask(self, question: str, *, k: int | None = None) -> tuple[str, dict | None, str]:
        from ketfaq.answer import InvalidQuestion, validate_question

        try:
            validate_question(question)
            response = self.answerer.ask(question, mode=self.mode, k=k).model_dump(mode="json")
        except InvalidQuestion as exc:
            return "invalid", None, str(exc)
        except Exception as exc:  # an evaluation records failures, it never stops on one
            return "error", None, f"{type(exc).__name__}: {exc}"
        return response["kind"], response, ""


class HttpClient:
    """``POST {url}/api/ask`` on a running server (the API always returns ``top_k`` passages)."""

    def __init__(self, url: str, timeout: float = 30.0, *, http=None) -> None:
        import httpx

        self._http = http if http is not None else httpx.Client(base_url=url.rstrip("/"), timeout=timeout)

    def ask(self, question: str, *, k: int | None = None) -> tuple[str, dict | None, str]:
        try:
            reply = self._http.post("/api/ask", json={"question": question})
        except Exception as exc:
            return "error", None, f"{type(exc).__name__}: {exc}"
        if reply.status_code == 422:
            return "invalid", None, str(reply.json().get("detail", ""))
        if reply.status_code != 200:
            return "error", None, f"HTTP {reply.status_code}: {reply.text[:200]}"
        body = reply.json()
        return str(body.get("kind", "error")), body, ""

    def close(self) -> None:
        self._http.close()


def check_invariants(response: dict, bodies: dict[str, str]) -> list[str]:
    """Contract invariants of one response: schema, verbatim passages, fixed disclaimer, referral."""
    from ketfaq.contract import AnswerResponse

    failures: list[str] = []
    try:
        AnswerResponse.model_validate(response)
    except ValidationError as exc:
        failures.append(f"schema: {exc.errors()[0].get('msg', exc)}")
    if response.get("disclaimer") != DISCLAIMER:
        failures.append("disclaimer: differs from messages.DISCLAIMER")
    if not str(response.get("referral") or "").strip():
        failures.append("referral: empty")
    passages = response.get("passages") or []
    if response.get("kind") == "crisis" and passages:
        failures.append("crisis_passages: a crisis response carries passages")
    for passage in passages:
        doc_id = (passage.get("source") or {}).get("doc_id", "")
        if passage.get("text", "") not in bodies.get(doc_id, ""):
            failures.append(f"verbatim: passage not found in article {doc_id!r}")
    return failures


def _must_reject(question: str, max_chars: int) -> bool:
    """The input contract: empty or whitespace-only questions get a 422; so does an over-long one
    unless the screen finds a crisis in it (then crisis help, see metrics.routing_correct)."""
    return not question.strip() or len(question) > max_chars


def run_records(records: Sequence[QARecord], client: Client, *, corpus_dir: Path,
                max_chars: int = 1000, rank_k: int | None = RANK_K, desc: str = "eval",
                progress: bool = True, on_result: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Ask every record's question and collect an :class:`Outcome` per record, in order.

    The response kept is the one the API returns; answer records with anchors are asked a second
    time with ``k=rank_k`` for the ranked list (its first passages are the API's).
    """
    bodies = {a.id: a.body for a in load_corpus(corpus_dir)}
    outcomes: list[Outcome] = []
    for record in tqdm(records, desc=desc, unit="q", disable=not progress, dynamic_ncols=True):
        started = time.perf_counter()
        label, response, detail = client.ask(record.question)
        latency = (time.perf_counter() - started) * 1000
        ranked = list((response or {}).get("passages") or [])
        if record.is_ranked and rank_k and label not in ("invalid", "error"):
            _, longer, _ = client.ask(record.question, k=rank_k)
            if longer is not None and len(longer.get("passages") or []) > len(ranked):
                ranked = list(longer["passages"])
        outcome = Outcome(
            id=record.id, question=record.question, expected=record.kind, source=record.source,
            predicted=label, response=response, latency_ms=round(latency, 2), anchors=record.anchors,
            ranked=ranked, detail=detail, must_reject=_must_reject(record.question, max_chars),
        )
        if response is not None:
            outcome.invariant_failures = check_invariants(response, bodies)
        outcomes.append(outcome)
        if on_result:
            on_result(outcome)
    return outcomes


def answerer_for(settings: Settings, config: Config, *, encoder=None, base=None, workdir: Path | None = None,
                 say: Callable[[str], None] = lambda _m: None):
    """An :class:`Answerer` for ``config``: the base one when only the mode differs, else a new one.

    Overrides that change the index build it into ``workdir`` (a temporary directory), never
    into the served ``index/``.
    """
    from ketfaq.embedding import encoder_for
    from ketfaq.runtime import load_answerer

    if not config.overrides and base is not None:
        return base, settings
    data = settings.model_dump()
    data.update(config.overrides)
    if config.needs_index:
        if workdir is None:
            raise ValueError(f"configuration {config.name!r} needs its own index: give a workdir")
        data["index_dir"] = workdir / "".join(c if c.isalnum() else "_" for c in config.name)
    new_settings = Settings(**data)
    if {"model_path", "model_name", "encoder_backend"} & set(config.overrides):
        encoder = encoder_for(new_settings)
    elif encoder is None:
        encoder = base.encoder if base is not None else encoder_for(new_settings)
    # Its own index is built once, in the workdir; the served one is never rebuilt from here.
    return load_answerer(new_settings, encoder, say=say), new_settings
