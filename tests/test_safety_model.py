"""The learned risk model and the screen-first order, through real HTTP with the real model.

No mocks: the shipped artifact, the serving encoder, the built index and the FastAPI app.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from ketfaq.messages import CHECK_IN, DISCLAIMER
from ketfaq.safety.features import N_FEATURES, hashed_counts
from ketfaq.safety.model import SCREEN_CHARS, RiskModel, load_model, screened_text, windows
from tests.conftest import load_qa

# Ordinary questions from the QA set, joined into a long, harmless message.
ORDINARY = [r["question"] for r in load_qa() if r["kind"] == "answer"]


def _long_ordinary(chars: int) -> str:
    text, i = "", 0
    while len(text) < chars:
        text += ORDINARY[i % len(ORDINARY)].rstrip("?") + "? "
        i += 1
    return text.strip()


def ask(client: TestClient, question: str):
    return client.post("/api/ask", json={"question": question})


def test_a_3000_character_crisis_message_gets_crisis_help(client: TestClient) -> None:
    story = _long_ordinary(1500) + " I have decided to end my life this weekend. " + _long_ordinary(1500)
    assert len(story) > 3000
    response = ask(client, story)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["kind"] == "crisis" and body["passages"] == []
    assert "988" in body["referral"] and body["disclaimer"] == DISCLAIMER


def test_a_crisis_sentence_past_the_screen_cap_is_still_seen(client: TestClient) -> None:
    # Longer than the screen cap: the first and last parts are screened.
    message = _long_ordinary(SCREEN_CHARS + 5000) + " I am going to kill myself tonight."
    body = ask(client, message).json()
    assert body["kind"] == "crisis"


def test_a_long_ordinary_message_gets_a_422_that_says_what_to_do(client: TestClient) -> None:
    response = ask(client, _long_ordinary(3000))
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "one question at a time" in detail and "988" in detail


def test_a_crisis_message_with_a_nul_gets_help_not_422(client: TestClient) -> None:
    body = ask(client, "i want to kill myself\x00").json()
    assert body["kind"] == "crisis"


def test_an_ordinary_message_with_a_nul_gets_a_422(client: TestClient) -> None:
    assert ask(client, "how long does a session last\x00").status_code == 422


@pytest.mark.parametrize("escape", ["\\ud800", "\\udfff", "\\ud83d"])
def test_a_lone_surrogate_never_gives_a_server_error(client: TestClient, escape: str) -> None:
    for question in (f"what are the side effects {escape}", f"i want to die {escape}"):
        raw = '{"question": "' + question + '"}'
        response = client.post("/api/ask", content=raw, headers={"content-type": "application/json"})
        assert response.status_code in (200, 422), response.text
    crisis = client.post("/api/ask", content='{"question": "i want to die \\ud800"}',
                         headers={"content-type": "application/json"})
    assert crisis.json()["kind"] == "crisis"


@pytest.mark.parametrize("question", [
    "my husband collapsed and isn't breathing",
    "my throat is closing up and my tongue is swollen",
])
def test_a_medical_emergency_gets_911_first(client: TestClient, question: str) -> None:
    body = ask(client, question).json()
    assert body["kind"] == "crisis"
    assert body["referral"].startswith("This may be a medical emergency. Call 911")


def test_danger_from_another_person_gets_the_violence_line(client: TestClient) -> None:
    body = ask(client, "my boyfriend threatened to kill me if i leave").json()
    assert body["kind"] == "crisis"
    assert "1-800-799-7233" in body["referral"] and "911" in body["referral"]


def test_spanish_emergency_gets_spanish_help_first(client: TestClient) -> None:
    body = ask(client, "mi esposo me amenazó con matarme").json()
    assert body["kind"] == "crisis" and body["referral"].startswith("Su seguridad es lo primero")


def test_check_in_is_the_fixed_line_and_only_where_the_gate_asks(client: TestClient, answerer) -> None:
    questions = [r["question"] for r in load_qa("safety_extra.jsonl") if r["kind"] != "crisis"]
    questions += ORDINARY
    flagged = 0
    for question in questions:
        decision = answerer.gate.classify(question)
        body = ask(client, question).json()
        if body["kind"] == "crisis":
            continue
        if decision.check_in:
            flagged += 1
            assert body["check_in"] == CHECK_IN
        else:
            assert body["check_in"] is None
    assert 0 < flagged < len(questions) * 0.2


def test_an_ordinary_question_has_no_check_in(client: TestClient) -> None:
    body = ask(client, "how long does a ketamine infusion take?").json()
    assert body["kind"] == "answer" and body["check_in"] is None


# ------------------------------------------------------------------------------------------
# The artifact and its features
# ------------------------------------------------------------------------------------------


def test_the_shipped_model_is_small_valid_and_ordered() -> None:
    from ketfaq.safety.commands import SHIPPED_MODEL

    assert SHIPPED_MODEL.stat().st_size < 3_000_000  # "a few MB at most"
    model = load_model()
    for regime in ("short", "long", "spanish"):
        band = model.band(regime)
        assert 0.0 < band.check_in <= band.crisis < 1.0
    assert model.info["metrics"]["test"]["cssrs-reddit500-users"]["positives"] > 50


def test_a_corrupt_artifact_fails_with_a_message_that_names_it(tmp_path) -> None:
    bad = tmp_path / "safety_model.npz"
    bad.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="safety_model.npz.*ketfaq safety train"):
        RiskModel.load(bad)


def test_a_misspelled_threshold_key_fails_at_load(tmp_path) -> None:
    model = load_model()
    path = tmp_path / "m.npz"
    model.save(path)
    with np.load(path) as data:
        found = {k: data[k] for k in data.files}
    thresholds = json.loads(str(found["thresholds"]))
    thresholds["short"]["crisys"] = thresholds["short"].pop("crisis")
    found["thresholds"] = np.array(json.dumps(thresholds))
    np.savez_compressed(path, **found)
    with pytest.raises(ValueError, match="crisys"):
        RiskModel.load(path)


def test_saving_and_loading_keeps_every_score(tmp_path) -> None:
    model = load_model()
    texts = ORDINARY[:20] + ["i cant do this anymore", "quiero morir"]
    vectors = np.random.default_rng(0).normal(size=(len(texts), model.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    model.save(tmp_path / "copy.npz")
    again = RiskModel.load(tmp_path / "copy.npz")
    np.testing.assert_array_equal(again.probabilities(texts, vectors), model.probabilities(texts, vectors))
    assert again.thresholds == model.thresholds and again.info == model.info


def test_the_gate_scores_a_long_message_as_training_does(answerer, encoder) -> None:
    """Whole message and its windows, highest wins: the same units training scored."""
    from ketfaq.safety.model import extra_windows
    from ketfaq.safety.train import message_scores

    text = _long_ordinary(2500)  # no lexicon hit, so the gate reaches the model
    vector = encoder.encode([text])
    trained, n_windows = message_scores(load_model(), [text], vector, encoder.encode)
    assert n_windows[0] == len(extra_windows(text)) > 1
    analysis = answerer.gate.analyze(text, vector[0])
    assert analysis.lexicon_hit is None and analysis.risk > 0
    assert analysis.risk == pytest.approx(trained[0], abs=1e-5)


def test_features_are_deterministic_and_robust_to_a_typo() -> None:
    ids_a, _ = hashed_counts("I feel suicidal tonight")
    ids_b, _ = hashed_counts("i feel suicdal tonite")
    again, _ = hashed_counts("I feel suicidal tonight")
    assert np.array_equal(np.sort(ids_a), np.sort(again))
    assert ids_a.max() < N_FEATURES
    assert len(np.intersect1d(ids_a, ids_b)) > 0.5 * min(len(ids_a), len(ids_b))


def test_windows_cover_the_whole_screened_text() -> None:
    text = _long_ordinary(5000)
    units = windows(text)
    assert len(units) > 5 and all(len(u) <= 400 for u in units)
    assert " ".join(units).split() == text.split()
    huge = "start " + "x " * SCREEN_CHARS + " end"
    screened = screened_text(huge)
    assert screened.startswith("start") and screened.endswith("end") and len(screened) <= SCREEN_CHARS + 1


def test_a_misspelled_key_in_the_semantic_config_fails_at_load_naming_it() -> None:
    import yaml

    from ketfaq.safety.lexicon import Lexicon

    text = (Path(__file__).resolve().parents[1] / "src/ketfaq/data/safety_lexicon.yaml").read_text("utf-8")
    data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    data["semantic"]["high_treshold"] = data["semantic"].pop("high_threshold")
    with pytest.raises(ValueError, match=r"semantic\.high_treshold"):
        Lexicon.from_mapping(data)


def _shipped_lexicon_data() -> dict:
    import yaml

    text = (Path(__file__).resolve().parents[1] / "src/ketfaq/data/safety_lexicon.yaml").read_text("utf-8")
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


@pytest.mark.parametrize(("damage", "named"), [
    # an option of a crisis group misspelled would silently mean its default (negatable: true)
    (lambda d: d["crisis_patterns"][0].update(negateable=False), r"crisis_patterns\[suicidal-intent\]\.negateable"),
    (lambda d: d["crisis_patterns"][0].update(scope="messages"), r"crisis_patterns\[suicidal-intent\]\.scope"),
    (lambda d: d["crisis_patterns"][0].update(past_guard="sometimes"), r"crisis_patterns\[suicidal-intent\]\.past_guard"),
    (lambda d: d["personal_advice"]["rules"][0].update(any=d["personal_advice"]["rules"][0].pop("all")),
     r"personal_advice\.rules\[own-dose\]\.all.*personal_advice\.rules\[own-dose\]\.any"),
    (lambda d: d["out_of_scope"]["offtopic_semantic"].update(treshold=0.5), r"out_of_scope\.offtopic_semantic\.treshold"),
    (lambda d: d["negation"]["negators"].append(False), r"negation\.negators.*quote words"),
    (lambda d: d.pop("past"), r"past: Field required"),
    (lambda d: d.update(version=2), r"version"),
])
def test_a_misspelled_or_wrong_lexicon_key_fails_at_load_naming_its_place(damage, named: str) -> None:
    from ketfaq.safety.lexicon import Lexicon

    data = _shipped_lexicon_data()
    damage(data)
    with pytest.raises(ValueError, match=named):
        Lexicon.from_mapping(data, source="edited.yaml")


# ------------------------------------------------------------------------------------------
# Body cap: refused before parsing, above what the screen reads
# ------------------------------------------------------------------------------------------


def test_a_body_over_the_cap_gets_413_before_parsing(client: TestClient, settings) -> None:
    raw = b'{"question": "' + b"a" * (settings.max_body_bytes + 10) + b'"}'
    response = client.post("/api/ask", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert "too large" in response.json()["detail"]
    assert "content-security-policy" in response.headers


def test_a_chunked_body_over_the_cap_gets_413(client: TestClient, settings) -> None:
    def chunks():
        yield b'{"question": "'
        for _ in range(settings.max_body_bytes // 4096 + 2):
            yield b"a" * 4096
        yield b'"}'

    response = client.post("/api/ask", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_the_cap_leaves_room_for_the_whole_screened_message(settings) -> None:
    # A screened message of SCREEN_CHARS characters, even as \\u escapes, fits under the cap.
    assert settings.max_body_bytes >= 3 * SCREEN_CHARS
