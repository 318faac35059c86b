"""Branches, alternative bindings, input/output ids in the trace, and YAML declarations of workflows."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from core.errors import WorkflowBuildError
from pipelines.workflow.builder import Workflow
from pipelines.workflow.draw import to_dot, to_mermaid
from pipelines.workflow.engine import content_id
from pipelines.workflow.model import Condition, RetryPolicy
from pipelines.workflow.spec import WorkflowSpec, find_workflow, list_workflows


class Hits(BaseModel):
    items: list[str]


class Draft(BaseModel):
    text: str


class Verdict(BaseModel):
    ok: bool
    decision: str


CORPUS = ["paid leave is 28 days", "the office opens at 9", "leave requests go to HR"]


def search(question: str) -> Hits:
    words = set(question.lower().split())
    return Hits(items=[doc for doc in CORPUS if words & set(doc.split())])


def answer(items: list[str]) -> Draft:
    return Draft(text=" / ".join(items))


def abstain(question: str) -> Draft:
    return Draft(text=f"no passages for {question!r}")


def check(text: str) -> Verdict:
    ok = "[" in text
    return Verdict(ok=ok, decision="released" if ok else "failed")


def strict_answer(items: list[str]) -> Draft:
    return Draft(text=" / ".join(f"{doc} [{n}]" for n, doc in enumerate(items, start=1)))


def final(text: str) -> Draft:
    return Draft(text=text)


def routed() -> Workflow:
    return (
        Workflow("qa", "1", inputs={"question": str})
        .step("search", search)
        .step("answer", answer, bind={"items": "search.items"}, when=Condition(ref="search.items", op="not_empty"))
        .step("abstain", abstain, when=Condition(ref="search.items", op="empty"))
        .step("check", check, bind={"text": "answer.text"})
        .step(
            "strict",
            strict_answer,
            bind={"items": "search.items"},
            when=Condition(ref="check.decision", op="ne", value="released"),
        )
        .step("final", final, bind={"text": ["strict.text", "answer.text", "abstain.text"]})
    )


def statuses(run) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {t.step: t.status for t in run.trace}


def test_no_passages_routes_to_abstain_and_records_skipped_steps() -> None:
    run = routed().build().run({"question": "quantum chromodynamics"})
    assert run.output("final", Draft).text == "no passages for 'quantum chromodynamics'"
    assert statuses(run) == {
        "search": "ok",
        "answer": "skipped",
        "abstain": "ok",
        "check": "skipped",
        "strict": "skipped",
        "final": "ok",
    }
    skipped = {t.step: t.reason for t in run.trace if t.status == "skipped"}
    assert skipped["answer"] == "condition not met: search.items not_empty"
    assert "upstream step(s) answer skipped" in (skipped["check"] or "")
    assert "not evaluated: step 'check' skipped" in (skipped["strict"] or "")
    assert run.skipped == {"answer", "check", "strict"} and run.maybe("answer", Draft) is None


def test_failed_check_routes_to_the_strict_step() -> None:
    run = routed().build().run({"question": "how many days of paid leave"})
    assert statuses(run)["abstain"] == "skipped"
    assert run.output("check", Verdict).decision == "failed"
    assert statuses(run)["strict"] == "ok"
    assert run.output("final", Draft).text == "paid leave is 28 days [1] / leave requests go to HR [2]"


def test_passing_check_skips_the_strict_step_and_final_takes_the_next_alternative() -> None:
    wf = routed()
    wf._steps.pop("check")
    wf.step("check", lambda text: Verdict(ok=True, decision="released"), bind={"text": "answer.text"})
    with pytest.raises(WorkflowBuildError, match="no type annotation|must return"):
        wf.build()

    def lenient(text: str) -> Verdict:
        return Verdict(ok=True, decision="released")

    wf = routed()
    wf._steps.pop("check")
    run = wf.step("check", lenient, bind={"text": "answer.text"}).build().run({"question": "office hours at 9"})
    assert statuses(run)["strict"] == "skipped"
    assert run.output("final", Draft).text == "the office opens at 9"


def test_trace_records_input_and_output_content_ids() -> None:
    run = routed().build().run({"question": "paid leave"})
    entry = {t.step: t for t in run.trace}
    search_out = run.output("search", Hits)
    assert entry["search"].input_ids == {"question": content_id("paid leave")}
    assert entry["search"].output_id == content_id(search_out)
    assert entry["answer"].input_ids == {"items": content_id(search_out.items)}
    assert entry["final"].output_id == content_id(run.output("final", Draft))
    assert entry["abstain"].input_ids == {} and entry["abstain"].output_id is None
    assert content_id(["a"]) != content_id(["b"]) and len(content_id("x")) == 16


def test_condition_on_unknown_step_or_field_fails_at_build() -> None:
    wf = Workflow("w", "1", inputs={"question": str}).step(
        "answer", abstain, when=Condition(ref="search.items", op="empty")
    )
    with pytest.raises(WorkflowBuildError, match="condition 'search.items' names unknown step 'search'"):
        wf.build()
    wf = (
        Workflow("w", "1", inputs={"question": str})
        .step("search", search)
        .step("abstain", abstain, when=Condition(ref="search.hits", op="empty"))
    )
    with pytest.raises(WorkflowBuildError, match="has no output field 'hits'"):
        wf.build()


def test_condition_edges_count_for_cycles() -> None:
    wf = (
        Workflow("w", "1", inputs={"question": str})
        .step("search", search, when=Condition(ref="abstain.text", op="empty"))
        .step("abstain", abstain, when=Condition(ref="search.items", op="empty"))
    )
    with pytest.raises(WorkflowBuildError, match="cycle"):
        wf.build()


def test_alternative_binding_type_mismatch_fails_at_build() -> None:
    wf = routed()
    wf._steps.pop("final")
    wf.step("final", final, bind={"text": ["strict.text", "search.items"]})
    with pytest.raises(WorkflowBuildError, match="'search.items' provides list\\[str\\]"):
        wf.build()


# ----- YAML declarations -----

QA_YAML = """
name: qa
version: "3"
description: search, answer or abstain, check, strict retry
inputs: {question: str}
steps:
  - {name: search, component: search, bind: {question: inputs.question}, timeout_s: 5}
  - name: answer
    component: answer
    bind: {items: search.items}
    when: {ref: search.items, op: not_empty}
    retry: {attempts: 3}
  - {name: abstain, component: abstain, bind: {question: inputs.question}, when: {ref: search.items, op: empty}}
  - {name: check, component: check, bind: {text: answer.text}}
  - name: strict
    component: strict
    bind: {items: search.items}
    when: {ref: check.decision, op: in, value: [failed, review]}
  - {name: final, component: final, bind: {text: [strict.text, answer.text, abstain.text]}}
"""
COMPONENTS = {
    "search": search,
    "answer": answer,
    "abstain": abstain,
    "check": check,
    "strict": strict_answer,
    "final": final,
}


def write(tmp_path: Path, text: str, name: str = "qa.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_yaml_declaration_builds_and_routes_like_the_python_one(tmp_path: Path) -> None:
    spec = WorkflowSpec.load(write(tmp_path, QA_YAML))
    wf = spec.build(COMPONENTS)
    assert (wf.name, wf.version) == ("qa", "3")
    assert wf.steps["answer"].retry == RetryPolicy(attempts=3)
    run = wf.run({"question": "how many days of paid leave"})
    assert run.output("final", Draft).text == "paid leave is 28 days [1] / leave requests go to HR [2]"
    assert wf.run({"question": "nothing"}).output("final", Draft).text == "no passages for 'nothing'"
    assert ("check", "strict", "when check.decision in ['failed', 'review']") in spec.edges()


def test_yaml_errors_name_the_file_and_the_problem(tmp_path: Path) -> None:
    with pytest.raises(WorkflowBuildError, match=r"qa.yaml is invalid: steps.1.when.op"):
        WorkflowSpec.load(write(tmp_path, QA_YAML.replace("op: not_empty", "op: nonempty")))
    with pytest.raises(WorkflowBuildError, match="unknown input type\\(s\\): text"):
        WorkflowSpec.load(write(tmp_path, QA_YAML.replace("{question: str}", "{question: text}")))
    with pytest.raises(WorkflowBuildError, match="not valid UTF-8 YAML"):
        WorkflowSpec.load(write(tmp_path, "name: [unclosed"))
    with pytest.raises(WorkflowBuildError, match="does not exist"):
        WorkflowSpec.load(tmp_path / "missing.yaml")
    spec = WorkflowSpec.load(write(tmp_path, QA_YAML))
    with pytest.raises(WorkflowBuildError, match="component\\(s\\) nobody supplied: strict"):
        spec.build({k: v for k, v in COMPONENTS.items() if k != "strict"})
    broken = WorkflowSpec.load(write(tmp_path, QA_YAML.replace("text: answer.text}", "text: answr.text}")))
    with pytest.raises(WorkflowBuildError, match="unknown step 'answr'"):
        broken.build(COMPONENTS)


def test_mermaid_and_dot_draw_steps_data_and_branch_edges(tmp_path: Path) -> None:
    spec = WorkflowSpec.load(write(tmp_path, QA_YAML))
    mermaid = to_mermaid(spec)
    assert mermaid.startswith("flowchart TD\n")
    assert "    search --> answer" in mermaid
    assert '    search -.->|"when search.items empty"| abstain' in mermaid
    assert '    answer["answer (retry x3)"]' in mermaid and "in_question --> search" in mermaid
    dot = to_dot(spec)
    assert dot.startswith('digraph "qa v3" {') and dot.rstrip().endswith("}")
    assert '"search" -> "abstain" [style=dashed, label="when search.items empty"];' in dot
    assert '"inputs.question" -> "search";' in dot


def test_packaged_answer_workflow_is_declared_and_valid() -> None:
    assert "answer" in [s.name for s in list_workflows()]
    spec = find_workflow("answer")
    names = [s.name for s in spec.steps]
    assert names[:3] == ["guard_input", "retrieve", "graph_context"]
    assert {"generate", "gate", "assemble_strict", "generate_strict", "gate_strict"} <= set(names)
    assert ("gate", "assemble_strict", "when gate.retryable true") in spec.edges()
    assert ("assemble", "generate", "when assemble.passages not_empty") in spec.edges()
    trimmed = spec.without(["assemble_strict", "generate_strict", "gate_strict"], version_suffix="-x")
    assert trimmed.version == spec.version + "-x" and len(trimmed.steps) == len(spec.steps) - 3
    with pytest.raises(WorkflowBuildError, match="unknown workflow 'nope'.*answer"):
        find_workflow("nope")
