"""The file prompt registry against the real packaged templates, and against broken templates in tmp_path."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import pytest

from core.errors import PromptError
from prompts.constants import ABSTENTION_TEXT
from prompts.registry import FilePromptRegistry, default_templates_dir

PASSAGES = [
    {"n": 1, "title": "Marie Curie", "text": "Marie Curie was born in Warsaw in 1867."},
    {"n": 2, "title": "", "text": "She won the Nobel Prize in Chemistry in 1911."},
]
FACTS = [
    {"subject": "Marie Curie", "predicate": "was born in", "object": "Warsaw", "n": 1},
    {"subject": "Marie Curie", "predicate": "won", "object": "Nobel Prize in Chemistry"},
    {"subject": "Pierre Curie", "predicate": "married", "object": "Marie Curie", "n": None},
]


def write_template(
    directory: Path,
    *,
    name: str = "demo",
    version: int = 1,
    inputs: tuple[str, ...] = ("question",),
    system: str = "Be brief.",
    user: str = "Q: {{ question }}",
    file_name: str | None = None,
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    lines = [f"name: {name}", f"version: {version}", "description: a test prompt", "owner: tests"]
    lines += ["inputs:"] + [f"  - {i}" for i in inputs] if inputs else ["inputs: []"]
    lines.append("system: |-")
    lines += ["  " + line for line in system.splitlines()]
    lines.append("user: |-")
    lines += ["  " + line for line in user.splitlines()]
    path = directory / (file_name or f"{name}.v{version}.yaml")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def make_registry(tmp_path: Path, labels: str = "demo:\n  production: 1\n") -> FilePromptRegistry:
    (tmp_path / "labels.yaml").write_text(labels, encoding="utf-8")
    return FilePromptRegistry(tmp_path / "templates")


# ----- the packaged templates -----


def test_packaged_templates_load_with_file_sha256() -> None:
    registry = FilePromptRegistry()
    templates = registry.list()
    names = {(t.name, t.version) for t in templates}
    assert {("answer", 1), ("extraction", 1)} <= names
    for template in templates:
        path = default_templates_dir() / f"{template.name}.v{template.version}.yaml"
        assert template.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        assert template.ref().sha256 == template.sha256


def test_production_labels_resolve_to_the_promoted_versions() -> None:
    registry = FilePromptRegistry()
    answer = registry.resolve("answer")
    assert (answer.name, answer.version) == ("answer", 3)
    assert answer.inputs == ("question", "passages") and answer.output_schema is not None
    assert registry.resolve("answer_strict").version == 3
    assert registry.resolve("extraction", "production").version == 1
    assert registry.labels()["answer"] == {"production": 3}
    promoted = registry.history("answer", "production")[-1]
    assert (promoted.kind, promoted.from_, promoted.to) == ("promote", "2", "3"), "the move is in the label log"


def test_answer_v2_leaves_abstaining_to_the_gate_and_the_strict_prompt_keeps_the_rule() -> None:
    registry = FilePromptRegistry()
    assert ABSTENTION_TEXT not in registry.get("answer", 2).system
    assert f"reply exactly: {ABSTENTION_TEXT}" in registry.get("answer_strict", 2).system


def test_answer_v2_shows_each_evidence_sentence_once_and_falls_back_to_the_triple() -> None:
    registry = FilePromptRegistry()
    sentence = "Marie Curie was born in Warsaw in 1867."
    facts = [
        {"subject": "Marie Curie", "predicate": "was born in", "object": "Warsaw", "n": 1, "evidence": sentence},
        {"subject": "Warsaw", "predicate": "in", "object": "1867", "n": 1, "evidence": sentence, "repeat": True},
        {"subject": "Pierre Curie", "predicate": "married", "object": "Marie Curie", "n": None},
    ]
    for name in ("answer", "answer_strict"):
        rendered = registry.render(registry.get(name, 2), question="Q?", passages=PASSAGES, facts=facts)
        user = rendered.messages[1]["content"]
        assert user.count(f"- {sentence} [1]") == 1 and "Warsaw in 1867\n" not in user
        assert "- Pierre Curie married Marie Curie\n" in user  # no evidence: the triple; n=None: no marker


def test_answer_template_spells_out_the_abstention_constant() -> None:
    template = FilePromptRegistry().get("answer", 1)
    assert ABSTENTION_TEXT == "The documents do not answer this question."
    assert f"reply exactly: {ABSTENTION_TEXT}" in template.system


def test_rendered_answer_prompt_numbers_passages_and_facts() -> None:
    registry = FilePromptRegistry()
    template = registry.get("answer", 1)
    rendered = registry.render(template, question="Where was Marie Curie born?", passages=PASSAGES, facts=FACTS)

    assert [m["role"] for m in rendered.messages] == ["system", "user"]
    user = rendered.messages[1]["content"]
    assert "[1] Marie Curie\nMarie Curie was born in Warsaw in 1867." in user
    assert "[2]\nShe won the Nobel Prize in Chemistry in 1911." in user
    assert "- Marie Curie was born in Warsaw [1]" in user
    assert "- Marie Curie won Nobel Prize in Chemistry\n" in user  # no passage number: no marker
    assert "- Pierre Curie married Marie Curie\n" in user  # n=None: no marker either
    assert user.index("[1]") < user.index("[2]") < user.index("Question: Where was Marie Curie born?")
    assert "{{" not in user and "{%" not in user
    assert rendered.template == template.ref()
    assert rendered.as_messages() == [dict(m) for m in rendered.messages]


def test_rendered_answer_prompt_without_facts_has_no_facts_section() -> None:
    registry = FilePromptRegistry()
    for version, heading in ((1, "Facts found"), (2, "Statements about")):
        template = registry.get("answer", version)
        with_facts = registry.render(template, question="Q?", passages=PASSAGES[:1], facts=FACTS)
        assert heading in with_facts.messages[1]["content"]
        rendered = registry.render(template, question="Q?", passages=PASSAGES[:1], facts=[])
        assert heading not in rendered.messages[1]["content"]


def test_rendered_sha256_is_deterministic_and_tracks_inputs() -> None:
    registry = FilePromptRegistry()
    template = registry.get("answer", 1)
    first = registry.render(template, question="Q?", passages=PASSAGES, facts=FACTS)
    again = registry.render(template, question="Q?", passages=PASSAGES, facts=FACTS)
    other = registry.render(template, question="Another Q?", passages=PASSAGES, facts=FACTS)
    assert first.rendered_sha256 == again.rendered_sha256
    assert first.rendered_sha256 != other.rendered_sha256
    assert len(first.rendered_sha256) == 64


def test_render_with_missing_input_names_it() -> None:
    registry = FilePromptRegistry()
    with pytest.raises(PromptError) as excinfo:
        registry.render(registry.get("answer", 2), question="Q?", passages=PASSAGES)
    assert "missing input(s): facts" in str(excinfo.value)


def test_render_with_extra_input_names_it() -> None:
    registry = FilePromptRegistry()
    with pytest.raises(PromptError) as excinfo:
        registry.render(registry.get("answer", 2), question="Q?", passages=PASSAGES, facts=[], tone="formal")
    assert "unexpected input(s): tone" in str(excinfo.value)


def test_render_with_malformed_passage_fails_with_prompt_error() -> None:
    registry = FilePromptRegistry()
    with pytest.raises(PromptError) as excinfo:
        registry.render(registry.get("answer", 2), question="Q?", passages=[{"n": 1}], facts=[])
    assert "text" in str(excinfo.value)


# ----- lookup errors -----


def test_unknown_label_lists_the_labels_that_exist() -> None:
    with pytest.raises(PromptError) as excinfo:
        FilePromptRegistry().resolve("answer", "canary")
    message = str(excinfo.value)
    assert "'canary'" in message
    assert "production" in message


def test_unknown_name_lists_known_prompts() -> None:
    registry = FilePromptRegistry()
    with pytest.raises(PromptError) as excinfo:
        registry.resolve("summarise")
    assert "answer" in str(excinfo.value) and "extraction" in str(excinfo.value)
    with pytest.raises(PromptError) as excinfo:
        registry.get("summarise", 1)
    assert "answer" in str(excinfo.value)


def test_unknown_version_lists_known_versions() -> None:
    with pytest.raises(PromptError) as excinfo:
        FilePromptRegistry().get("answer", 99)
    assert "no version 99" in str(excinfo.value)
    assert "known versions of 'answer': 1" in str(excinfo.value)


def test_label_pointing_at_missing_version_fails_on_resolve(tmp_path: Path) -> None:
    write_template(tmp_path / "templates")
    registry = make_registry(tmp_path, "demo:\n  production: 1\n  staging: 2\n")
    assert registry.resolve("demo").version == 1
    with pytest.raises(PromptError) as excinfo:
        registry.resolve("demo", "staging")
    assert "points to version 2" in str(excinfo.value)


# ----- loading custom directories -----


def test_custom_directory_label_resolution(tmp_path: Path) -> None:
    write_template(tmp_path / "templates", version=1, user="Q: {{ question }}")
    write_template(tmp_path / "templates", version=2, user="Question: {{ question }}")
    registry = make_registry(tmp_path, "demo:\n  production: 1\n  staging: 2\n")
    assert registry.resolve("demo").version == 1
    staging = registry.resolve("demo", "staging")
    assert staging.version == 2
    rendered = registry.render(staging, question="Why?")
    assert rendered.messages[1]["content"] == "Question: Why?"
    assert [t.version for t in registry.list()] == [1, 2]


def test_explicit_labels_path(tmp_path: Path) -> None:
    write_template(tmp_path / "t")
    labels = tmp_path / "elsewhere.yaml"
    labels.write_text("demo:\n  production: 1\n", encoding="utf-8")
    assert FilePromptRegistry(tmp_path / "t", labels_path=labels).resolve("demo").version == 1


def test_template_using_undeclared_variable_fails_at_load(tmp_path: Path) -> None:
    path = write_template(tmp_path / "templates", user="Q: {{ question }} in {{ language }}")
    registry = make_registry(tmp_path)
    with pytest.raises(PromptError) as excinfo:
        registry.list()
    message = str(excinfo.value)
    assert str(path) in message
    assert "not declared" in message and "language" in message


def test_template_declaring_unused_input_fails_at_load(tmp_path: Path) -> None:
    path = write_template(tmp_path / "templates", inputs=("question", "context"))
    registry = make_registry(tmp_path)
    with pytest.raises(PromptError) as excinfo:
        registry.resolve("demo")
    message = str(excinfo.value)
    assert str(path) in message
    assert "does not use" in message and "context" in message


def test_variables_in_system_and_loops_count_as_used(tmp_path: Path) -> None:
    write_template(
        tmp_path / "templates",
        inputs=("persona", "items"),
        system="You are {{ persona }}.",
        user="{% for item in items %}- {{ item }}\n{% endfor %}{{ range(2) | list | length }}",
    )
    registry = make_registry(tmp_path)
    rendered = registry.render(registry.resolve("demo"), persona="a clerk", items=["a", "b"])
    assert rendered.messages[0]["content"] == "You are a clerk."
    assert rendered.messages[1]["content"] == "- a\n- b\n2"


def test_file_name_must_match_name_and_version(tmp_path: Path) -> None:
    path = write_template(tmp_path / "templates", version=2, file_name="demo.v1.yaml")
    with pytest.raises(PromptError) as excinfo:
        make_registry(tmp_path).list()
    assert str(path) in str(excinfo.value) and "version 2" in str(excinfo.value)


def test_badly_named_file_fails(tmp_path: Path) -> None:
    write_template(tmp_path / "templates", file_name="demo.yaml")
    with pytest.raises(PromptError) as excinfo:
        make_registry(tmp_path).list()
    assert "<name>.v<version>.yaml" in str(excinfo.value)


def test_missing_key_fails_validation(tmp_path: Path) -> None:
    directory = tmp_path / "templates"
    directory.mkdir()
    (directory / "demo.v1.yaml").write_text(
        textwrap.dedent(
            """\
            name: demo
            version: 1
            description: no owner
            inputs: [question]
            system: hi
            user: "{{ question }}"
            """
        ),
        encoding="utf-8",
    )
    with pytest.raises(PromptError) as excinfo:
        make_registry(tmp_path).list()
    assert "owner" in str(excinfo.value)


def test_invalid_jinja_fails_at_load(tmp_path: Path) -> None:
    write_template(tmp_path / "templates", user="{% for x in question %}{{ x }}")
    with pytest.raises(PromptError) as excinfo:
        make_registry(tmp_path).list()
    assert "Jinja2" in str(excinfo.value)


def test_nothing_is_read_until_first_use(tmp_path: Path) -> None:
    registry = FilePromptRegistry(tmp_path / "does-not-exist")  # must not raise
    with pytest.raises(PromptError) as excinfo:
        registry.list()
    assert "does not exist" in str(excinfo.value)


def test_missing_labels_file_fails_clearly(tmp_path: Path) -> None:
    write_template(tmp_path / "templates")
    with pytest.raises(PromptError) as excinfo:
        FilePromptRegistry(tmp_path / "templates").resolve("demo")
    assert "labels.yaml" in str(excinfo.value)


def test_reload_picks_up_new_versions(tmp_path: Path) -> None:
    write_template(tmp_path / "templates")
    registry = make_registry(tmp_path)
    assert [t.version for t in registry.list()] == [1]
    write_template(tmp_path / "templates", version=2)
    assert [t.version for t in registry.list()] == [1]
    registry.reload()
    assert [t.version for t in registry.list()] == [1, 2]


def test_an_output_schema_travels_from_the_file_to_the_rendered_prompt(tmp_path: Path) -> None:
    path = write_template(tmp_path / "templates")
    schema = "output_schema:\n  type: object\n  properties:\n    answer: {type: string}\n  required: [answer]\n"
    path.write_text(path.read_text("utf-8") + schema, encoding="utf-8")
    registry = make_registry(tmp_path)
    template = registry.resolve("demo")
    expected = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    assert template.output_schema == expected
    assert registry.render(template, question="q?").output_schema == expected
    # The packaged answer v3 asks for evidence ids and a short answer; v2 is free text.
    packaged = FilePromptRegistry()
    assert packaged.get("answer", 2).output_schema is None
    v3 = packaged.get("answer", 3).output_schema
    assert v3 is not None and v3["required"] == ["evidence", "answer"]


def test_an_output_schema_that_is_not_an_object_fails_at_load(tmp_path: Path) -> None:
    path = write_template(tmp_path / "templates")
    path.write_text(path.read_text("utf-8") + "output_schema:\n  type: string\n", encoding="utf-8")
    with pytest.raises(PromptError) as excinfo:
        make_registry(tmp_path).list()
    assert str(path) in str(excinfo.value) and "JSON object" in str(excinfo.value)


def test_answer_v3_shows_sentence_ids_under_passage_titles() -> None:
    registry = FilePromptRegistry()
    passages = [
        {"n": 1, "title": "Marie Curie", "sentences": [{"id": "1.1", "text": "Marie Curie was born in Warsaw."}]},
        {"n": 2, "title": "Nobel", "sentences": [{"id": "2.1", "text": "She won in 1911."}]},
    ]
    rendered = registry.render(registry.get("answer", 3), question="Where was Curie born?", passages=passages)
    user = rendered.messages[1]["content"]
    assert "[1] Marie Curie\n1.1 Marie Curie was born in Warsaw." in user
    assert "[2] Nobel\n2.1 She won in 1911." in user and user.endswith("Question: Where was Curie born?")
