"""Add, list and retire articles in the corpus directory (what ``ketfaq corpus`` does).

An imported file becomes ``<corpus>/<id>.md`` with front matter. HTML is converted to Markdown
with markdownify after BeautifulSoup drops scripts, styles, navigation, forms and images, so only
the article text remains. Retired articles move to ``<corpus>/.retired/`` (restorable by moving
them back) because only ``<corpus>/*.md`` is indexed.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import tempfile
from pathlib import Path

import yaml
from bs4 import BeautifulSoup
from markdownify import markdownify
from slugify import slugify

from ketfaq.corpus import Article, CorpusError, load_article

__all__ = ["RETIRED_DIR", "html_to_markdown", "import_article", "list_articles", "new_article_id",
           "retire_article"]

RETIRED_DIR = ".retired"
_DROP_TAGS = ("script", "style", "noscript", "nav", "header", "footer", "aside", "form", "iframe",
              "svg", "button", "img", "figure", "picture", "video", "audio", "template", "link", "meta")
_FRONT_MATTER_RE = re.compile(r"\A\ufeff?---[ \t]*\n(.*?)\n---[ \t]*\n", re.DOTALL)
_NUMBER_RE = re.compile(r"^(\d+)-")


def html_to_markdown(html: str) -> tuple[str, str | None]:
    """Markdown of the page's article text and the page title (``<h1>`` or ``<title>``), if any."""
    soup = BeautifulSoup(html, "html.parser")
    title_tag = soup.find("h1") or soup.find("title")
    title = title_tag.get_text(" ", strip=True) if title_tag else None
    for tag in soup(list(_DROP_TAGS)):
        tag.decompose()
    for tag in soup.select('[role="navigation"], [role="banner"], [role="contentinfo"], [aria-hidden="true"]'):
        tag.decompose()
    root = soup.find("article") or soup.find("main") or soup.body or soup
    text = markdownify(str(root), heading_style="ATX", bullets="-", strip=["a"])
    text = re.sub(r"[ \t]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n", title or None


def _split_front_matter(text: str) -> tuple[dict, str]:
    match = _FRONT_MATTER_RE.match(text)
    if not match:
        return {}, text
    meta = yaml.safe_load(match.group(1))
    return (meta if isinstance(meta, dict) else {}), text[match.end():]


def new_article_id(corpus_dir: Path, title: str) -> str:
    """``NNN-title-slug``: the next free number, then the title as lowercase words and hyphens."""
    numbers = [int(m.group(1)) for p in corpus_dir.glob("*.md") if (m := _NUMBER_RE.match(p.name))]
    prefix = f"{max(numbers, default=-1) + 1:03d}"
    slug = slugify(title, max_length=80 - len(prefix) - 1, word_boundary=True) or "article"
    return f"{prefix}-{slug}"


def import_article(
    source: Path,
    corpus_dir: Path,
    *,
    title: str | None = None,
    url: str | None = None,
    publisher: str | None = None,
    doc_id: str | None = None,
    reviewed: dt.date | None = None,
) -> Article:
    """Write ``source`` (Markdown, plain text or HTML) into the corpus with front matter."""
    raw = source.read_bytes().decode("utf-8", errors="strict").replace("\r\n", "\n")
    is_html = source.suffix.lower() in (".html", ".htm") or re.match(r"\s*<(!doctype|html)", raw, re.I)
    found_title = None
    if is_html:
        body, found_title = html_to_markdown(raw)
    else:
        meta, body = _split_front_matter(raw)
        found_title = meta.get("title")
        url = url or meta.get("url")
        publisher = publisher or meta.get("publisher")
        if (m := re.search(r"^#[ \t]+(.+?)[ \t#]*$", body, re.MULTILINE)) and not found_title:
            found_title = m.group(1)
    title = (title or found_title or "").strip()
    if not title:
        raise CorpusError(f"{source}: no title found; pass --title")
    if not body.strip():
        raise CorpusError(f"{source}: no article text found")
    if not re.search(r"^#[ \t]+\S", body, re.MULTILINE):
        body = f"# {title}\n\n{body.lstrip()}"
    corpus_dir.mkdir(parents=True, exist_ok=True)
    doc_id = doc_id or new_article_id(corpus_dir, title)
    target = corpus_dir / f"{doc_id}.md"
    existing = {a.id for a in list_articles(corpus_dir)}
    if target.exists() or doc_id in existing:
        raise CorpusError(f"{target}: an article with id {doc_id!r} already exists; edit it instead")
    front = {"id": doc_id, "title": title, "publisher": publisher, "url": url,
             "reviewed": reviewed or dt.date.today()}
    text = f"---\n{yaml.safe_dump(front, sort_keys=False, allow_unicode=True)}---\n\n{body.rstrip()}\n"
    fd, tmp = tempfile.mkstemp(dir=corpus_dir, prefix=".import-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        load_article(Path(tmp))  # refuse to write anything the build would reject
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return load_article(target)


def list_articles(corpus_dir: Path) -> list[Article]:
    """The articles that a build would index, sorted by id (unreadable files are skipped)."""
    articles = []
    for path in sorted(corpus_dir.glob("*.md")):
        try:
            articles.append(load_article(path))
        except CorpusError:
            continue
    return sorted(articles, key=lambda a: a.id)


def retire_article(corpus_dir: Path, doc_id: str) -> Path:
    """Move the article ``doc_id`` out of the index into ``<corpus>/.retired/``; returns the new path."""
    matches = [a.path for a in list_articles(corpus_dir) if a.id == doc_id]
    if not matches:
        raise CorpusError(f"no article with id {doc_id!r} in {corpus_dir}: see `ketfaq corpus list`")
    retired = corpus_dir / RETIRED_DIR
    retired.mkdir(exist_ok=True)
    target = retired / matches[0].name
    if target.exists():
        stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
        target = retired / f"{matches[0].stem}.{stamp}.md"
    shutil.move(matches[0], target)
    return target
