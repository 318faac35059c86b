"""A small real corpus and helpers to turn texts into documents and chunks for the retrieval tests."""

from __future__ import annotations

from core.types import Chunk, Document, sha256_text

#: Ten short passages, one topic each. Keys are document ids.
PASSAGES: dict[str, str] = {
    "refunds": (
        "Customers can return any unused product within 30 days of delivery for a full refund. "
        "Refunds are issued to the original payment method within five business days."
    ),
    "shipping": (
        "Standard shipping takes three to five business days. "
        "Express shipping delivers the next business day for orders placed before noon."
    ),
    "password": (
        "To reset your password, open the account settings page, choose 'Forgot password' "
        "and follow the link sent to your email address."
    ),
    "warranty": (
        "All Zephyr laptops carry a two-year limited warranty covering manufacturing defects, "
        "but not accidental damage or water spills."
    ),
    "router": (
        "Error code E42 on the Zephyr-9 router means the firmware update failed; "
        "unplug the router for ten seconds and retry the update."
    ),
    "office": "The Berlin office is located at Invalidenstrasse 112 and is open Monday to Friday from 9am to 6pm.",
    "vacation": (
        "Employees accrue 2.5 days of paid vacation per month, and unused vacation days can be "
        "carried over until March 31 of the following year."
    ),
    "security": (
        "Two-factor authentication is mandatory for all administrator accounts; hardware security keys are supported."
    ),
    "retention": "Customer support chat transcripts are retained for 18 months and then permanently deleted.",
    "pets": "Dogs are welcome in the office on Fridays if they are vaccinated and stay on a leash in shared areas.",
}


def make_document(doc_id: str, text: str, *, pieces: int = 1, title: str = "") -> tuple[Document, list[Chunk]]:
    """A document and ``pieces`` contiguous chunks covering its text (split at spaces near equal lengths)."""
    document = Document(id=doc_id, source=f"{doc_id}.txt", title=title, text=text, sha256=sha256_text(text))
    cuts = [0]
    for i in range(1, pieces):
        target = len(text) * i // pieces
        space = text.find(" ", target)
        cuts.append(space + 1 if space != -1 else len(text))
    cuts.append(len(text))
    chunks = []
    for ordinal, (start, end) in enumerate(zip(cuts, cuts[1:], strict=False)):
        piece = text[start:end]
        chunks.append(
            Chunk(
                id=f"{doc_id}#{ordinal}",
                document_id=doc_id,
                source=document.source,
                title=title,
                text=piece,
                start=start,
                end=end,
                ordinal=ordinal,
                sha256=sha256_text(piece),
            )
        )
    return document, chunks
