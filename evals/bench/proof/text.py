"""Text helpers of the proof-set builder: sentences, answer spans, candidate entities, deterministic mutations.

Everything here is a pure function of its inputs (randomness comes from a :class:`random.Random` the caller seeds),
so the labelled set is rebuilt byte for byte.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence

#: Words after which a period does not end a sentence.
_ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "st",
        "jr",
        "sr",
        "co",
        "inc",
        "ltd",
        "no",
        "vs",
        "jan",
        "feb",
        "mar",
        "apr",
        "aug",
        "sept",
        "sep",
        "oct",
        "nov",
        "dec",
        "gen",
        "gov",
        "lt",
        "col",
        "sgt",
        "rev",
        "prof",
        "u.s",
        "u.k",
        "e.g",
        "i.e",
        "c",
        "ca",
        "approx",
        "mt",
        "ft",
        "fr",
    ]
)
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])([\"')\]]*)\s+(?=[\"'(\[]?[A-Z0-9À-Ý])")
_WORD = re.compile(r"[\w'’-]+")
_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
] + ["Jan", "Feb", "Mar", "Apr", "Aug", "Sep", "Sept", "Oct", "Nov", "Dec"]
_MONTH_RE = re.compile(r"\b(?:" + "|".join(_MONTHS) + r")\b\.?")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_CAP = r"(?:[A-ZÀ-Ý][\w'’-]*|[A-Z]\.)"
_CONNECTOR = r"(?:of|de|la|le|the|von|van|da|du|del|am|on|and|y)"
_CAPITALISED_RUN = re.compile(rf"{_CAP}(?:\s+(?:{_CONNECTOR}\s+)*{_CAP})*")
#: Leading words stripped from candidate entities (sentence openers, pronouns, articles).
_OPENERS = frozenset(
    [
        "the",
        "a",
        "an",
        "in",
        "on",
        "at",
        "by",
        "for",
        "from",
        "of",
        "to",
        "with",
        "as",
        "after",
        "before",
        "during",
        "when",
        "while",
        "however",
        "also",
        "he",
        "she",
        "it",
        "they",
        "his",
        "her",
        "its",
        "their",
        "this",
        "that",
        "these",
        "those",
        "there",
        "then",
        "since",
        "following",
        "although",
        "though",
        "because",
        "but",
        "and",
        "or",
        "if",
        "many",
        "some",
        "several",
        "most",
        "other",
        "both",
        "each",
        "all",
    ]
)
PRONOUNS = {"He": "", "She": "", "It": "", "They": "", "His": "'s", "Her": "'s", "Its": "'s", "Their": "'s"}
STOPWORDS = _OPENERS | frozenset(
    [
        "is",
        "was",
        "were",
        "are",
        "be",
        "been",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "where",
        "how",
        "did",
        "does",
        "do",
        "has",
        "have",
        "had",
        "not",
        "into",
        "than",
    ]
)


def sentences(text: str) -> list[str]:
    """Split ``text`` into sentences, not breaking after abbreviations (``Dec.``) or initials (``James K.``)."""
    out: list[str] = []
    start = 0
    for match in _SENTENCE_BREAK.finditer(text):
        before = text[start : match.start()].rstrip("\"')]")
        last = before.split()[-1] if before.split() else ""
        token = last.strip("\"'()[]").rstrip(".").casefold()
        if token in _ABBREVIATIONS or (len(token) == 1 and token.isalpha()) or re.fullmatch(r"([a-z]\.)+[a-z]", token):
            continue
        out.append(text[start : match.start() + len(match.group(1))].strip())
        start = match.end()
    tail = text[start:].strip()
    if tail:
        out.append(tail)
    return [s for s in out if s]


def answer_pattern(answer: str) -> re.Pattern[str]:
    """Case-insensitive whole-word pattern for ``answer`` (a final period dropped, spacing flexible)."""
    core = answer.strip().rstrip(".").strip()
    parts = [re.escape(p) for p in core.split()]
    return re.compile(r"(?<![\w])" + r"\s+".join(parts) + r"(?![\w])", re.IGNORECASE)


def find_answer(text: str, answers: Sequence[str]) -> re.Match[str] | None:
    """The first occurrence in ``text`` of the gold answer or an alias (longest alias first)."""
    for answer in sorted((a for a in answers if a.strip().rstrip(".").strip()), key=len, reverse=True):
        match = answer_pattern(answer).search(text)
        if match:
            return match
    return None


def contains_any(text: str, answers: Iterable[str]) -> bool:
    """Whether ``text`` holds any of ``answers`` as whole words (case-insensitive)."""
    return any(answer_pattern(a).search(text) for a in answers if a.strip().rstrip(".").strip())


def content_words(text: str) -> set[str]:
    """Lower-cased words of ``text`` without stopwords (for overlap scores)."""
    return {w.casefold() for w in _WORD.findall(text) if w.casefold() not in STOPWORDS and len(w) > 2}


def title_core(title: str) -> str:
    """A title without its disambiguation: ``Dear Brother (Hank Williams song)`` -> ``Dear Brother``."""
    return re.sub(r"\s*\(.*?\)\s*$", "", title).strip()


def resolve_pronoun(sentence: str, subject: str) -> str:
    """Replace a sentence-initial pronoun (He, Its, ...) by ``subject`` so the sentence stands alone."""
    first, _, rest = sentence.partition(" ")
    if first in PRONOUNS and subject and rest:
        return f"{subject}{PRONOUNS[first]} {rest}"
    return sentence


def answer_kind(answer: str) -> str:
    """``year``, ``date``, ``number``, ``name`` (has a capitalised word) or ``other`` (cannot be swapped)."""
    core = answer.strip().rstrip(".")
    if re.fullmatch(r"\d{3,4}", core):
        return "year"
    if _MONTH_RE.search(core) and re.search(r"\d", core):
        return "date"
    if re.search(r"\d", core):
        return "number"
    if re.search(r"[A-ZÀ-Ý]", core):
        return "name"
    return "other"


def capitalised_phrases(text: str) -> list[str]:
    """Runs of capitalised words (with connectors such as ``of``), leading openers (``The``, ``In``) stripped;
    a single word opening a sentence (``Thus``) is not a name and is left out."""
    found = []
    for match in _CAPITALISED_RUN.finditer(text):
        words = match.group(0).split()
        before = text[: match.start()].rstrip()
        if len(words) == 1 and (not before or before[-1] in ".!?\"'("):
            continue
        while words and words[0].casefold() in _OPENERS:
            words = words[1:]
        while words and words[-1].casefold() in _OPENERS:
            words = words[:-1]
        phrase = " ".join(words)
        if len(phrase) >= 3 and not _MONTH_RE.fullmatch(phrase) and not phrase.endswith("."):
            found.append(phrase)
    return found


_CATEGORY = re.compile(
    r"\b(?:is|was|are|were)\s+(?:an?|the)\s+([^,.;:()]*?)"
    r"(?=\s+(?:in|of|from|by|that|which|who|located|based|founded|with|for|and|on|at|whose|to)\b|[,.;:()]|$)"
)
_LIFESPAN = re.compile(r"\(\s*(?:born\b|c\.\s*)?[^)]{0,25}?\d{3,4}\s*(?:[–-]|\))|\(born\b")
#: Nationalities and languages: a single-word answer among these is swapped for another one of them.
DEMONYMS = tuple(
    [
        "American",
        "British",
        "English",
        "French",
        "German",
        "Italian",
        "Spanish",
        "Portuguese",
        "Dutch",
        "Swedish",
        "Norwegian",
        "Danish",
        "Finnish",
        "Russian",
        "Polish",
        "Greek",
        "Turkish",
        "Chinese",
        "Japanese",
        "Korean",
        "Indian",
        "Irish",
        "Scottish",
        "Welsh",
        "Canadian",
        "Australian",
        "Mexican",
        "Brazilian",
        "Latin",
        "Hebrew",
        "Arabic",
        "Persian",
        "Gujarati",
        "Hindi",
        "Bengali",
        "Tamil",
        "Urdu",
    ]
)
#: Countries: a country answer is swapped for another country.
COUNTRIES = tuple(
    [
        "Norway",
        "Sweden",
        "Finland",
        "Denmark",
        "Iceland",
        "Germany",
        "France",
        "Italy",
        "Spain",
        "Portugal",
        "Austria",
        "Switzerland",
        "Belgium",
        "Poland",
        "Greece",
        "Turkey",
        "Egypt",
        "Kenya",
        "Nigeria",
        "Botswana",
        "Zambia",
        "Namibia",
        "Australia",
        "Canada",
        "Mexico",
        "Brazil",
        "Argentina",
        "Chile",
        "Peru",
        "India",
        "China",
        "Japan",
        "Vietnam",
        "Thailand",
        "Indonesia",
        "Somalia",
        "Djibouti",
        "Ethiopia",
        "Ireland",
        "Scotland",
        "England",
        "Wales",
    ]
)


def category(title: str, text: str) -> str | None:
    """What a passage is about: ``person`` (a lifespan after the name), else the head noun of its first
    ``is a ...`` phrase (``film``, ``county``, ``musician``), else ``None``."""
    opening = text[:200]
    name = title_core(title)
    at = opening.find(name.split()[0]) if name else -1
    if at >= 0 and _LIFESPAN.search(opening[at : at + len(name) + 60]):
        return "person"
    first = sentences(text)[0] if text.strip() else ""
    match = _CATEGORY.search(first)
    if match is None or not match.group(1).split():
        return None
    head = match.group(1).split()[-1].casefold()
    return head if head.isalpha() else None


def years(text: str) -> list[str]:
    """Four-digit years (1000-2099) in ``text``."""
    return re.findall(r"\b(1\d{3}|20\d{2})\b", text)


def mutate_numbers(text: str, rng: random.Random) -> str:
    """``text`` with every number replaced by a different one of the same shape (separators kept)."""

    def swap(match: re.Match[str]) -> str:
        original = match.group(0)
        while True:
            digits = [str(rng.randint(1 if i == 0 else 0, 9)) for i in range(sum(c.isdigit() for c in original))]
            out, pos = [], 0
            for char in original:
                if char.isdigit():
                    out.append(digits[pos])
                    pos += 1
                else:
                    out.append(char)
            candidate = "".join(out)
            if candidate != original:
                return candidate

    return _NUMBER.sub(swap, text)


def mutate_date(date: str, rng: random.Random) -> str:
    """A different, still valid date of the same format: another month, day 1-28, the year moved 3-60 years."""
    full = _MONTHS[:12]

    def month(match: re.Match[str]) -> str:
        word = match.group(0).rstrip(".")
        choice = rng.choice([m for m in full if not m.startswith(word[:3])])
        return choice[: len(word)] + match.group(0)[len(word) :] if len(word) <= 4 else choice

    def number(match: re.Match[str]) -> str:
        value = int(match.group(0))
        if value >= 1000:
            return str(value + rng.choice((-1, 1)) * rng.randint(3, 60))
        return str(rng.randint(1, 28))

    return re.sub(r"\b\d{1,4}\b", number, _MONTH_RE.sub(month, date, count=1))


def split_prefix(answer: str) -> tuple[str, str]:
    """(lower-case prefix, core) of an answer: ``near Salem`` -> (``near ``, ``Salem``)."""
    match = re.search(r"[A-ZÀ-Ý0-9]", answer)
    if match is None:
        return "", answer
    return answer[: match.start()], answer[match.start() :]
