"""English stemming that is safe to call from several threads at once.

A Snowball stemmer object keeps the word it is working on in itself (its buffer and cursors), so two threads sharing
one corrupt each other's word: the API's concurrent answers (evidence sentences, the gate's lexical checks) failed
with ``IndexError: string index out of range``. Each thread gets a stemmer of its own, made at its first word.
"""

from __future__ import annotations

import threading

import snowballstemmer


class EnglishStemmer(threading.local):
    """The Snowball English stem of a word (``developed`` -> ``develop``); one stemmer per calling thread (a
    ``threading.local``: each thread runs ``__init__`` at its first use)."""

    def __init__(self) -> None:
        self.english = snowballstemmer.stemmer("english")

    def stem(self, word: str) -> str:
        return str(self.english.stemWord(word))
