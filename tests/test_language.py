"""Language detection: our numpy walk of py3langid's automaton gives py3langid's own answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from py3langid.langid import visit_counts

from aggregator.normalize import language
from aggregator.normalize.language import _WINDOW, _identifier, _model, detect_language

# Sentences written for this test, one per script or language family the model must tell apart.
SAMPLES = (
    "The harbour authority said on Tuesday that the ferry would resume service next week.",
    "Die Hafenbehörde teilte am Dienstag mit, dass die Fähre nächste Woche wieder fahren werde.",
    "L'autorité portuaire a annoncé mardi que le ferry reprendrait son service la semaine prochaine.",
    "La autoridad portuaria dijo el martes que el transbordador volvería a operar la próxima semana.",
    "Портовое управление заявило во вторник, что паром возобновит работу на следующей неделе.",
    "港湾当局は火曜日、フェリーの運航を来週再開すると発表した。",
    "항만 당국은 화요일 여객선 운항을 다음 주에 재개한다고 밝혔다.",
    "أعلنت هيئة الميناء يوم الثلاثاء أن العبارة ستستأنف خدمتها الأسبوع المقبل.",
    "Η λιμενική αρχή ανακοίνωσε την Τρίτη ότι το πλοίο θα επαναλάβει τα δρομολόγιά του.",
    "SHOUTED HEADLINE IN CAPITALS ABOUT THE HARBOUR FERRY SERVICE RESUMING",
    "",
    "x",
    "1234 5678 !!!",
)


def assert_same(text: str) -> None:
    model = _model()
    data = model._encode(text)
    expected = visit_counts(model.tk_nextmove, model._rowbase, model.tk_output, data)
    found = _identifier().visits(data)
    if expected is None:
        assert found is None
    else:
        assert found is not None
        indexes, counts = found
        # Same features, same counts, same first-seen order: the float sums run in the same order.
        assert indexes.tolist() == list(expected.keys())
        assert counts.tolist() == list(expected.values())
    assert _identifier().classify(text) == model.classify(text)


def test_samples_classify_exactly_as_py3langid() -> None:
    for text in SAMPLES:
        assert_same(text)
    assert detect_language(SAMPLES[1]) == "de"
    assert detect_language(SAMPLES[4]) == "ru"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text_classifies_exactly_as_py3langid(text: str) -> None:
    assert_same(text)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=120))
def test_any_bytes_walk_the_automaton_as_py3langid(data: bytes) -> None:
    model = _model()
    expected = visit_counts(model.tk_nextmove, model._rowbase, model.tk_output, data)
    found = _identifier().visits(data)
    assert (found is None) == (expected is None)
    if found is not None and expected is not None:
        assert dict(zip(found[0].tolist(), found[1].tolist(), strict=True)) == dict(expected)


def test_news_articles_classify_exactly_as_py3langid(shared_dir: Path) -> None:
    paths = sorted((shared_dir / "corpus" / "news").rglob("*.txt"))[:400]
    assert paths
    for path in paths:
        assert_same(path.read_text(errors="replace")[:1000])


def test_automaton_remembers_no_more_than_the_window() -> None:
    # The shortcut holds only if no state lies deeper than _WINDOW bytes from the start state:
    # breadth-first search over the automaton's transitions finds each state's depth.
    model = _model()
    table = np.frombuffer(model.tk_nextmove, dtype=np.uint32).reshape(-1, 256)
    rows = np.asarray(model.tk_row)
    seen = np.zeros(len(rows), dtype=bool)
    seen[0] = True
    frontier = np.array([0])
    depth = 0
    while True:
        reached = np.unique(table[rows[frontier]].ravel())
        frontier = reached[~seen[reached]]
        if not len(frontier):
            break
        seen[frontier] = True
        depth += 1
    assert seen.all()
    assert depth <= _WINDOW
    # And the window is not wider than needed (a smaller one would be cheaper).
    assert depth == _WINDOW


def test_weight_rows_are_converted_once_into_a_compact_table() -> None:
    identifier = language._WindowedIdentifier(_model())
    assert identifier.used == 0
    identifier.classify(SAMPLES[0])
    used = identifier.used
    features = np.flatnonzero(identifier.slots >= 0)
    assert 0 < used == len(features) < len(identifier.slots) // 100
    # Rows are packed at the start of the table, each equal to the model's row.
    assert sorted(identifier.slots[features].tolist()) == list(range(used))
    assert np.array_equal(identifier.weights[identifier.slots[features]], _model().nb_ptc[features].astype(np.float32))
    identifier.classify(SAMPLES[0])
    assert identifier.used == used
    identifier.classify(SAMPLES[1])
    assert identifier.used > used
