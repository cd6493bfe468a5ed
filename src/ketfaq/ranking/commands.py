"""``ketfaq rank train``: rebuild (or check) the shipped second-stage ranking model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ketfaq.settings import get_settings

__all__ = ["rank_app", "SHIPPED_RANKING_MODEL"]

rank_app = typer.Typer(help="The second ranking stage: train and check its model.", no_args_is_help=True)
SHIPPED_RANKING_MODEL = Path(__file__).resolve().parent.parent / "data" / "ranking_model.npz"
_TOLERANCE = 0.02  # float noise between machines, not more


def _problems(new, shipped) -> list[str]:
    out = []
    if abs(new.threshold - shipped.threshold) > 0.1:
        out.append(f"threshold: retrained {new.threshold:.3f}, shipped {shipped.threshold:.3f}")
    pairs = [("ranker.leave_one_article_out." + k, new.info["ranker"]["leave_one_article_out"][k],
              shipped.info["ranker"]["leave_one_article_out"].get(k)) for k in ("hit@1", "hit@3", "mrr@5")]
    pairs += [("answerability." + k, v, shipped.info["answerability"].get(k))
              for k, v in new.info["answerability"].items() if isinstance(v, float)]
    for name, a, b in pairs:
        if b is None or abs(a - b) > _TOLERANCE:
            out.append(f"{name}: retrained {a}, shipped {b}")
    return out


@rank_app.command("train")
def train_command(
    data: Annotated[Path | None, typer.Option(
        "--data", help="Folder with medquad-questions.jsonl and gard-consumer-questions.jsonl "
                       "(questions about other conditions, used as negatives).")] = None,
    out: Annotated[Path, typer.Option("--out", help="Where to write the artifact.")] = SHIPPED_RANKING_MODEL,
    check: Annotated[bool, typer.Option(
        "--check", help="Retrain in memory and fail if it differs from the shipped artifact; writes nothing.")] = False,
) -> None:
    """Rebuild the ranker and answerability model from the corpus and QA files (docs/RANKING.md)."""
    from ketfaq.embedding import encoder_for
    from ketfaq.index import load_index
    from ketfaq.ranking.model import load_ranking_model
    from ketfaq.ranking.train import train
    from ketfaq.retrieval import Searcher
    from ketfaq.runtime import ensure_index

    settings = get_settings()
    encoder = encoder_for(settings)
    ensure_index(settings, encoder, say=lambda m: typer.echo(m, err=True))
    s = settings
    searcher = Searcher(load_index(s.index_dir), rrf_k=s.rrf_k, candidates=s.candidates,
                        dedup_threshold=s.dedup_threshold, bm25_weight=s.bm25_weight,
                        heading_weight=s.bm25_heading_weight, rerank_depth=s.rerank_depth)
    model = train(searcher, lambda texts: encoder.encode(texts), Path("qa"), data,
                  log=lambda m: typer.echo(m, err=True))
    typer.echo(json.dumps(model.info, indent=2))
    if check:
        problems = _problems(model, load_ranking_model(SHIPPED_RANKING_MODEL))
        for problem in problems:
            typer.echo(f"FAIL {problem}", err=True)
        if problems:
            typer.echo("the shipped ranking model is not what `ketfaq rank train` makes: retrain "
                       "and commit it", err=True)
            raise typer.Exit(1)
        typer.echo("shipped ranking model matches a fresh training run")
        return
    model.save(out)
    typer.echo(f"wrote {out} ({out.stat().st_size / 1e3:.0f} kB)")
