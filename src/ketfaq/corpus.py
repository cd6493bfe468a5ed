"""Load and validate the clinic's articles: ``corpus/<id>.md`` with YAML front matter."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

__all__ = [
    "Article", "CorpusError", "REQUIRED_FIELDS", "SYNONYMS_FILE",
    "corpus_hash", "load_article", "load_corpus", "load_synonyms",
]

SYNONYMS_FILE = "synonyms.yaml"

REQUIRED_FIELDS = ("id", "title", "publisher", "url", "reviewed")
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,79}$")
# libyaml's C loader when present (same documents, same errors): the Python one is much slower.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_FRONT_MATTER_RE = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*\n", re.DOTALL)


class CorpusError(ValueError):
    """An article file is unusable; the message names the file and the problem."""


@dataclass(frozen=True, slots=True)
class Article:
    """One article: its metadata and its Markdown body (the text passages are cut from)."""

    id: str
    title: str
    publisher: str | None
    url: str | None
    reviewed: dt.date
    body: str
    path: Path

    @property
    def content_hash(self) -> str:
        """Hash of everything that influences the index for this article."""
        meta = f"{self.id}\n{self.title}\n{self.publisher}\n{self.url}\n"
        return hashlib.sha256((meta + self.body).encode("utf-8")).hexdigest()


def load_article(path: Path) -> Article:
    """Parse one article file, raising :class:`CorpusError` with the file name on any problem."""
    try:
        raw = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{path}: not valid UTF-8 (byte {exc.start})") from None
    raw = raw.replace("\r\n", "\n").lstrip("\ufeff")
    match = _FRONT_MATTER_RE.match(raw)
    if not match:
        raise CorpusError(f"{path}: missing YAML front matter (a '---' block at the top)")
    try:
        meta = yaml.load(match.group(1), Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        raise CorpusError(f"{path}: invalid YAML front matter: {exc}") from None
    if not isinstance(meta, dict):
        raise CorpusError(f"{path}: front matter must be a mapping of fields")
    missing = [name for name in REQUIRED_FIELDS if name not in meta]
    if missing:
        raise CorpusError(f"{path}: front matter is missing field(s): {', '.join(missing)}")
    doc_id = str(meta["id"])
    if not _ID_RE.match(doc_id):
        raise CorpusError(f"{path}: id {doc_id!r} must be lowercase letters, digits and hyphens")
    title = meta["title"]
    if not isinstance(title, str) or not title.strip():
        raise CorpusError(f"{path}: title must be non-empty text")
    reviewed = meta["reviewed"]
    if isinstance(reviewed, str):
        try:
            reviewed = dt.date.fromisoformat(reviewed)
        except ValueError:
            raise CorpusError(f"{path}: reviewed must be a date (YYYY-MM-DD), got {reviewed!r}") from None
    if not isinstance(reviewed, dt.date):
        raise CorpusError(f"{path}: reviewed must be a date (YYYY-MM-DD)")
    for name in ("publisher", "url"):
        if meta[name] is not None and not isinstance(meta[name], str):
            raise CorpusError(f"{path}: {name} must be text or null")
    body = raw[match.end():]
    if not body.strip():
        raise CorpusError(f"{path}: the article body is empty")
    return Article(
        id=doc_id,
        title=title.strip(),
        publisher=meta["publisher"],
        url=meta["url"],
        reviewed=reviewed,
        body=body,
        path=path,
    )


def load_corpus(corpus_dir: Path) -> list[Article]:
    """All articles in ``corpus_dir`` sorted by id; duplicate ids and an empty corpus are errors."""
    if not corpus_dir.is_dir():
        raise CorpusError(f"{corpus_dir}: corpus directory not found")
    articles = [load_article(path) for path in sorted(corpus_dir.glob("*.md"))]
    if not articles:
        raise CorpusError(f"{corpus_dir}: no articles (*.md) found")
    seen: dict[str, Path] = {}
    for article in articles:
        if article.id in seen:
            raise CorpusError(
                f"{article.path}: duplicate id {article.id!r} (also used by {seen[article.id]})"
            )
        seen[article.id] = article.path
    return sorted(articles, key=lambda a: a.id)


def corpus_hash(articles: list[Article]) -> str:
    """One hash over all articles, used to tell whether the index is stale."""
    digest = hashlib.sha256()
    for article in sorted(articles, key=lambda a: a.id):
        digest.update(article.content_hash.encode())
    return digest.hexdigest()


def load_synonyms(path: Path) -> dict[str, list[str]]:
    """The staff-editable synonyms file: a visitor's word or phrase -> article terms.

    Missing file means no synonyms. Keys and terms are lower-cased; errors name the file.
    """
    if not path.exists():
        return {}
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise CorpusError(f"{path}: invalid synonyms file: {exc}") from None
    if not isinstance(data, dict):
        raise CorpusError(f"{path}: synonyms must be a mapping of 'visitor word: [article terms]'")
    synonyms: dict[str, list[str]] = {}
    for key, terms in data.items():
        if isinstance(terms, str):
            terms = [terms]
        if not isinstance(key, str) or not key.strip():
            raise CorpusError(f"{path}: synonym key {key!r} must be non-empty text")
        if not isinstance(terms, list) or not terms or not all(isinstance(t, str) and t.strip() for t in terms):
            raise CorpusError(f"{path}: synonyms for {key!r} must be a non-empty list of text")
        synonyms[key.strip().lower()] = [t.strip().lower() for t in terms]
    return synonyms
