"""English stemming that is safe to call from several threads at once.

A Snowball stemmer object keeps the word it is working on in itself (its buffer and cursors), so two threads sharing
one corrupt each other's word: the API's concurrent answers (evidence sentences, the gate's lexical checks) failed
with ``IndexError: string index out of range``. Each thread gets a stemmer of its own, made at its first word.
"""

from __future__ import annotations

import threading

import snowballstemmer


class _PerThread(threading.local):
    """The calling thread's English Snowball stemmer."""

    def __init__(self) -> None:
        self.english = snowballstemmer.stemmer("english")


class EnglishStemmer:
    """The Snowball English stem of a word (``developed`` -> ``develop``); one stemmer per calling thread."""

    def __init__(self) -> None:
        self._local = _PerThread()

    def stem(self, word: str) -> str:
        return str(self._local.english.stemWord(word))
