"""The behaviour every :class:`~pipelines.store.base.AuditStore` must have, as a mixin of tests.

A test class mixes in :class:`AuditStoreContract` and provides a ``store`` fixture yielding an empty store; the tests
here only call the Protocol's methods.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from core.errors import AnswerNotFoundError, InputError
from core.types import AnswerRecord, Citation, Document, GateRecord, PromptRef, Provenance, WorkflowRef
from pipelines.store.base import AuditStore, SourceSnapshot

DOC = Document(id="d1", source="d1.md", text="Staff get 28 days of leave.", sha256="a" * 64)
DOC2 = Document(
    id="d2", source="d2.md", text="Sick pay starts on day four.", sha256="b" * 64, media_type="text/markdown"
)


def record(answer_id: str, created_at: str, decision: str = "released", answer: str = "28 days [1].") -> AnswerRecord:
    return AnswerRecord(
        answer_id=answer_id,
        question=f"question {answer_id}",
        answer=answer,
        citations=[
            Citation(chunk_id="c1", document_id="d1", source="d1.md", start=0, end=27, text=DOC.text, score=1.0)
        ],
        provenance=Provenance(
            prompt=PromptRef(name="answer", version=1, sha256="0" * 64),
            workflow=WorkflowRef(name="answer", version="2"),
            model="m",
            gate=GateRecord(decision=decision),  # type: ignore[arg-type]
        ),
        created_at=created_at,
    )


SNAP = SourceSnapshot(
    chunk_id="c1", document_id="d1", document_sha256=DOC.sha256, start=0, end=27, text=DOC.text, role="cited"
)
SNAP2 = SourceSnapshot(
    chunk_id="c2",
    document_id="d2",
    document_sha256=DOC2.sha256,
    start=0,
    end=28,
    text=DOC2.text,
    role="retrieved",
    snapshot_id="run-7",
)


class AuditStoreContract:
    """Tests of the AuditStore Protocol; the class mixing this in supplies the ``store`` fixture (an empty store)."""

    def test_audit_contract(self, store: AuditStore) -> None:
        audit = store
        a = record("a1", "2026-01-01T10:00:00+00:00")
        b = record("b2", "2026-01-02T10:00:00+00:00", decision="review", answer="Held 100% _for_ review.")
        audit.save_with_sources(a, [SNAP], [DOC])
        audit.save_with_sources(b, [SNAP], [DOC])  # the same document version is stored once
        assert audit.get("a1") == a and audit.count() == 2
        with pytest.raises(sa.exc.IntegrityError):
            audit.save(record("a1", "2026-03-01T00:00:00+00:00", answer="overwrite attempt"))
        assert audit.get("a1") == a, "records are never replaced"
        with pytest.raises(AnswerNotFoundError, match="zz"):
            audit.get("zz")
        assert [x.answer_id for x in audit.list_answers()] == ["b2", "a1"]
        assert [x.answer_id for x in audit.list_answers(start="2026-01-02T00:00:00+00:00")] == ["b2"]
        assert [x.answer_id for x in audit.list_answers(end="2026-01-02T00:00:00+00:00")] == ["a1"]
        assert [x.answer_id for x in audit.list_answers(decision="review")] == ["b2"]
        assert [x.answer_id for x in audit.list_answers(q="100%")] == ["b2"]
        assert [x.answer_id for x in audit.list_answers(q="_FOR_")] == ["b2"]
        assert audit.list_answers(q="%") == [] or all("%" in x.answer for x in audit.list_answers(q="%"))
        assert [x.answer_id for x in audit.list_answers(limit=1, offset=1)] == ["a1"]
        assert audit.sources("a1") == [SNAP]
        assert audit.document_versions([DOC.sha256])[DOC.sha256].text == DOC.text
        review = audit.add_review("b2", reviewer="r", decision="approved", note="ok", corrected_answer=None)
        assert audit.reviews("b2") == [review] and audit.get("b2") == b
        assert audit.list_answers(decision="review")[0].reviews == 1
        with pytest.raises(InputError, match="corrected_answer"):
            audit.add_review("b2", reviewer="r", decision="corrected", note="", corrected_answer=" ")
        with pytest.raises(AnswerNotFoundError):
            audit.add_review("zz", reviewer="r", decision="approved", note="", corrected_answer=None)

    def test_count_grows_with_each_saved_record(self, store: AuditStore) -> None:
        assert store.count() == 0
        store.save(record("a1", "2026-01-01T10:00:00+00:00"))
        assert store.count() == 1
        store.save_with_sources(record("b2", "2026-01-02T10:00:00+00:00"), [SNAP], [DOC])
        assert store.count() == 2
        with pytest.raises(sa.exc.IntegrityError):
            store.save(record("b2", "2026-01-03T10:00:00+00:00"))
        assert store.count() == 2, "a refused save stores nothing"

    def test_get_of_an_unknown_id_is_answer_not_found(self, store: AuditStore) -> None:
        store.save(record("a1", "2026-01-01T10:00:00+00:00"))
        with pytest.raises(AnswerNotFoundError, match="'nope'") as err:
            store.get("nope")
        assert err.value.hint and "/v1/answers" in err.value.hint

    def test_list_answers_filters_by_decision_and_text(self, store: AuditStore) -> None:
        store.save(record("r1", "2026-01-01T10:00:00+00:00", answer="Employees get 28 days [1]."))
        store.save(record("h1", "2026-01-02T10:00:00+00:00", decision="review", answer="Maybe 30 days."))
        store.save(record("h2", "2026-01-03T10:00:00+00:00", decision="review", answer="Employees get 30 days."))
        store.save(record("x1", "2026-01-04T10:00:00+00:00", decision="abstained", answer="Unanswerable here."))
        assert [x.answer_id for x in store.list_answers(decision="review")] == ["h2", "h1"]
        assert [x.answer_id for x in store.list_answers(decision="abstained")] == ["x1"]
        assert store.list_answers(decision="released")[0].decision == "released"
        assert [x.answer_id for x in store.list_answers(q="employees GET")] == ["h2", "r1"], "case-insensitive"
        assert [x.answer_id for x in store.list_answers(q="question h1")] == ["h1"], "the question is searched too"
        assert [x.answer_id for x in store.list_answers(decision="review", q="employees")] == ["h2"]
        assert store.list_answers(decision="review", q="unanswerable") == []
        summary = store.list_answers(q="Maybe")[0]
        assert (summary.question, summary.answer, summary.citations, summary.reviews) == (
            "question h1",
            "Maybe 30 days.",
            1,
            0,
        )

    def test_records_are_whole_newest_first_paged_and_filtered_by_time(self, store: AuditStore) -> None:
        saved = [record(f"p{i}", f"2026-02-0{i}T10:00:00+00:00") for i in range(1, 6)]
        for r in saved:
            store.save(r)
        assert store.records(limit=100) == saved[::-1], "whole records, newest first"
        assert [r.answer_id for r in store.records(limit=2)] == ["p5", "p4"]
        assert [r.answer_id for r in store.records(limit=2, offset=2)] == ["p3", "p2"]
        window = store.records(start="2026-02-02T00:00:00+00:00", end="2026-02-04T10:00:00+00:00")
        assert [r.answer_id for r in window] == ["p3", "p2"], "[start, end): the end is excluded"
        assert store.records(start="2027-01-01T00:00:00+00:00") == []

    def test_search_matches_texts_never_key_names_and_its_specials_are_literal(self, store: AuditStore) -> None:
        answers = {
            "k1": "Plain answer.",
            "u1": "Use snake_case here.",
            "p1": "Up 5% this year.",
            "b1": "The path is C:\\temp.",
            "n1": "A NUL\x00 byte.",
            "s1": "Either and/or.",
        }
        for n, (answer_id, text) in enumerate(answers.items()):
            store.save(record(answer_id, f"2026-01-0{n + 1}T10:00:00+00:00", answer=text))

        def found(q: str) -> list[str]:
            return sorted(x.answer_id for x in store.list_answers(q=q))

        assert found("_") == ["u1"], "underscore is literal and JSON key names are not searched"
        assert found("%") == ["p1"]
        assert found("\\") == ["b1"]
        assert found("\x00") == ["n1"]
        assert found("/") == ["s1"], "the LIKE escape character is literal too"
        assert found("5%") == ["p1"] and found("e_c") == ["u1"]
        for key in ("answer_id", "provenance", "citations", '"answer"', "chunk_id", "released", "sha256"):
            assert found(key) == [], key
        assert found("28 DAYS OF LEAVE") == sorted(answers), "citation text is searched, case-insensitively"
        assert found("question u1") == ["u1"]

    def test_a_corrected_review_needs_the_corrected_text(self, store: AuditStore) -> None:
        store.save(record("a1", "2026-01-01T10:00:00+00:00"))
        for missing in (None, "", "  \n"):
            with pytest.raises(InputError, match="corrected_answer"):
                store.add_review("a1", reviewer="r", decision="corrected", note="wrong", corrected_answer=missing)
        assert store.reviews("a1") == [], "a refused review stores nothing"
        fixed = store.add_review("a1", reviewer="r", decision="corrected", note="", corrected_answer="25 days.")
        assert store.reviews("a1") == [fixed] and fixed.corrected_answer == "25 days."
        assert store.get("a1").answer == "28 days [1].", "a correction never edits the answer"

    def test_reviews_come_back_oldest_first(self, store: AuditStore) -> None:
        store.save(record("a1", "2026-01-01T10:00:00+00:00"))
        store.save(record("b2", "2026-01-02T10:00:00+00:00"))
        made = [
            store.add_review("a1", reviewer="ann", decision="approved", note="1", corrected_answer=None),
            store.add_review("a1", reviewer="bob", decision="rejected", note="2", corrected_answer=None),
            store.add_review("a1", reviewer="cat", decision="corrected", note="3", corrected_answer="27 days."),
        ]
        other = store.add_review("b2", reviewer="dan", decision="approved", note="", corrected_answer=None)
        assert store.reviews("a1") == made
        assert [r.note for r in store.reviews("a1")] == ["1", "2", "3"]
        assert all(r.answer_id == "a1" for r in made) and len({r.review_id for r in made}) == 3
        assert store.reviews("b2") == [other] and store.reviews("zz") == []
        assert [(x.answer_id, x.reviews) for x in store.list_answers()] == [("b2", 1), ("a1", 3)]

    def test_save_with_sources_round_trips_sources_and_document_versions(self, store: AuditStore) -> None:
        first = record("a1", "2026-01-01T10:00:00+00:00")
        store.save_with_sources(first, [SNAP, SNAP2], [DOC, DOC2])
        store.save_with_sources(record("b2", "2026-02-01T10:00:00+00:00"), [SNAP], [DOC])
        store.save_with_sources(record("c3", "2026-03-01T10:00:00+00:00"), [], [])
        assert sorted(store.sources("a1"), key=lambda s: s.chunk_id) == [SNAP, SNAP2]
        assert store.sources("b2") == [SNAP] and store.sources("c3") == [] and store.sources("zz") == []
        versions = store.document_versions([DOC.sha256, DOC2.sha256, "f" * 64])
        assert set(versions) == {DOC.sha256, DOC2.sha256}, "an unknown hash is left out"
        v2 = versions[DOC2.sha256]
        assert (v2.document_id, v2.source, v2.title, v2.media_type, v2.text) == (
            "d2",
            "d2.md",
            "",
            "text/markdown",
            DOC2.text,
        )
        assert versions[DOC.sha256].first_seen == first.created_at, "a version is stored once, when first seen"
        assert store.document_versions([]) == {}
        assert store.get("a1") == first
