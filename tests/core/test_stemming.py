"""English stemming from several threads at once: the stems are the ones a single thread gets.

A shared Snowball stemmer object corrupts its word when two threads stem at once (``IndexError: string index out of
range``, seen as a 500 from two concurrent answers); :class:`core.stemming.EnglishStemmer` gives each thread its own.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import snowballstemmer

from core.stemming import EnglishStemmer

WORDS = [
    "developed",
    "developing",
    "relational",
    "generously",
    "conditional",
    "nationalization",
    "hopefulness",
    "running",
    "happiness",
    "organizational",
    "capitalism",
    "electricity",
] * 2000


@contextmanager
def switching_often() -> Iterator[None]:
    """Make the interpreter switch threads every microsecond, so that interleavings a race needs happen."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


def test_concurrent_stems_equal_single_thread_stems() -> None:
    expected = {w: snowballstemmer.stemmer("english").stemWord(w) for w in set(WORDS)}
    stemmer = EnglishStemmer()
    wrong: list[str] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            wrong.extend(w for w in WORDS if stemmer.stem(w) != expected[w])
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    with switching_often():
        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors and not wrong, (errors[:1], wrong[:5])
    assert stemmer.stem("developed") == "develop"
