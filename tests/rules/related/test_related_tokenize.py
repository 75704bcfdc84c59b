"""The related-issue tokenizer: identifiers split and kept whole, stopwords out, plurals folded."""

from __future__ import annotations

from rules.related.tokenize import plain_terms, stem, terms


def test_camel_case_identifier_is_kept_whole_and_split() -> None:
    out = list(terms("NullPointerException thrown"))
    assert out[:4] == ["nullpointerexception", "null", "pointer", "exception"]
    assert "thrown" in out


def test_dotted_identifier_keeps_path_components_and_words() -> None:
    out = set(terms("at org.apache.hadoop.fs.FileSystem#getFileStatus"))
    assert {"org.apache.hadoop.fs.filesystem#getfilestatus", "filesystem", "getfilestatus"} <= out
    assert {"org", "apache", "hadoop", "fs", "file", "system", "get", "status"} <= out


def test_snake_case_and_acronyms() -> None:
    out = list(terms("max_retry_count HTTPServer2"))
    assert out == ["max_retry_count", "max", "retry", "count", "httpserver2", "http", "server2"]


def test_digits_stay_with_their_word() -> None:
    assert list(terms("s3a log4j")) == ["s3a", "log4j"]


def test_stopwords_and_single_letters_dropped_but_negation_kept() -> None:
    assert list(terms("The export is not working at a 2 x")) == ["export", "not", "working", "2"]


def test_s_stemmer_folds_plurals_only() -> None:
    assert [stem(w) for w in ["errors", "policies", "classes", "status", "class", "working"]] == [
        "error",
        "policy",
        "classe",
        "status",
        "class",
        "working",
    ]


def test_plain_terms_are_the_baselines_word_runs() -> None:
    assert plain_terms("Can't open FileSystem.get()") == ["can", "t", "open", "filesystem", "get"]
