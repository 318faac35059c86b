from __future__ import annotations

import pytest

from kg.names import entity_id, is_stopword_span, normalize_name


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("University of Chicago", "university of chicago"),
        ("  The   University of  Chicago ", "university of chicago"),
        ("the university of chicago?", "university of chicago"),
        ("Hong Kong-Taiwanese", "hong kong taiwanese"),
        ("O'Brien", "obrien"),
        ("U.S.", "u s"),
        ("ＡＢＣ Ｃｏｒｐ", "abc corp"),  # fullwidth letters fold under NFKC
        ("STRASSE", "strasse"),
        ("Straße", "strasse"),  # casefold, not lower
        ("The", "the"),  # a lone article is kept
        ("Théâtre du Châtelet", "théâtre du châtelet"),
        ("!!!", ""),
    ],
)
def test_normalize_name(name: str, expected: str) -> None:
    assert normalize_name(name) == expected


def test_entity_id_is_prefixed_normalised_name() -> None:
    assert entity_id("The University of Chicago") == "ent:university of chicago"
    assert entity_id("university of chicago") == entity_id("UNIVERSITY OF CHICAGO.")


def test_entity_id_rejects_names_without_words() -> None:
    with pytest.raises(ValueError, match="no word characters"):
        entity_id(" -- ")


def test_stopword_span() -> None:
    assert is_stopword_span("of the")
    assert is_stopword_span("")
    assert not is_stopword_span("the university")
