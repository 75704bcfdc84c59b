"""Text to index terms: identifiers split and kept whole, stopwords dropped, light stemming."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache

# Identifiers as they appear in bug reports: dotted packages and classes
# (org.apache.hadoop.fs.Path), snake_case, camelCase, Class#method, $inner.
_TOKEN = re.compile(r"[A-Za-z0-9_$]+(?:[.#][A-Za-z0-9_$]+)*")
# Case changes split words; digits stay with their word (s3a, log4j, HTTPServer2).
_PART = re.compile(r"[A-Z0-9]+(?=[A-Z][a-z])|[A-Z]?[a-z0-9]+|[A-Z0-9]+")
_SPLIT = re.compile(r"[._#$]+")
_PLAIN_WORD = re.compile(r"\w+")
# Words in other scripts: runs of letters that are not ASCII (Cyrillic, Greek, Arabic,
# Hebrew, Devanagari, CJK...). Emoji and punctuation are not words.
_OTHER = r"[^\W\d_A-Za-z]+"
_WORD = re.compile(f"({_TOKEN.pattern})|({_OTHER})")
# Scripts written without spaces between words (CJK ideographs, kana, Thai, Lao, Khmer,
# Myanmar): a run is indexed as its overlapping character pairs, the usual approach when
# no word segmenter is at hand (Lucene's CJKBigramFilter does the same); a lone
# character stands for itself.
_UNSPACED = re.compile(
    "[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+"
)

# A short English function-word list (the SMART/Lucene style: words with no topic),
# kept small on purpose: words like "not", "fail" or "error" carry meaning in bug reports.
_STOPWORDS = """a about above after again all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for
    from further had has have having he her here hers him his how i if in into is it its
    itself just me more most my no nor of off on once only or other our ours out over own
    same she should so some such than that the their theirs them then there these they this
    those through to too under until up very was we were what when where which while who
    whom why will with would you your yours"""
STOPWORDS = frozenset(_STOPWORDS.split())

MAX_TERM = 64


def stem(word: str) -> str:
    """Harman's S-stemmer (1991): plural endings only, so identifiers survive intact."""
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and not word.endswith(("eies", "aies")):
        return word[:-3] + "y"
    if word.endswith("es") and not word.endswith(("aes", "ees", "oes")):
        return word[:-1]
    if word.endswith("s") and not word.endswith(("us", "ss")):
        return word[:-1]
    return word


def _wholes_and_parts(token: str) -> tuple[list[str], list[str]]:
    """The identifier, each dotted component that is itself compound, and the word parts."""
    wholes: list[str] = []
    parts: list[str] = []
    pieces = [p for p in _SPLIT.split(token) if p]
    for piece in pieces:
        words = _PART.findall(piece)
        if len(words) > 1:
            wholes.append(piece.lower())
        parts.extend(words)
    if len(pieces) > 1:
        wholes.insert(0, token.lower().strip("._#$"))
    return wholes, parts


@lru_cache(maxsize=1 << 16)
def _token_terms(token: str) -> tuple[str, ...]:
    """The index terms of one token (memoized: reports repeat their words and identifiers)."""
    out: list[str] = []
    wholes, parts = _wholes_and_parts(token)
    for whole in wholes:
        if len(whole) <= MAX_TERM:
            out.append(whole)
    for part in parts:
        word = part.lower()
        if word in STOPWORDS or len(word) > MAX_TERM:
            continue
        if len(word) == 1 and not word.isdigit():
            continue
        out.append(stem(word))
    return tuple(out)


def terms(text: str) -> Iterator[str]:
    """Index terms of a text, in order: each word, and for identifiers the whole and its parts.

    Latin-script words and identifiers are split, stopped and stemmed (English); words of
    other scripts are kept whole, case-folded; scripts without spaces become character
    pairs.
    """
    for latin, other in _WORD.findall(text):
        if latin:
            yield from _token_terms(latin)
        else:
            yield from _other_terms(other)


@lru_cache(maxsize=1 << 14)
def _other_terms(run: str) -> tuple[str, ...]:
    """The terms of a run of non-ASCII letters."""
    out: list[str] = []
    start = 0
    for unspaced in _UNSPACED.finditer(run):
        out += _word(run[start : unspaced.start()])
        chars = unspaced.group()
        out += [chars] if len(chars) == 1 else [chars[i : i + 2] for i in range(len(chars) - 1)]
        start = unspaced.end()
    out += _word(run[start:])
    return tuple(out)


def _word(word: str) -> list[str]:
    word = word.casefold()
    return [word] if 1 < len(word) <= MAX_TERM else []


def plain_terms(text: str) -> list[str]:
    """The baseline's tokens: lowercase runs of word characters, nothing removed."""
    return _PLAIN_WORD.findall(text.lower())
