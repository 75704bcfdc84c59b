"""Routing speed: 1,000 rules and a 700-tag taxonomy against real bug-report text.

Times the hub's engine (compiled closures, rule index, one-pass taxonomy)
side by side with the straightforward evaluation (every rule's conditions,
every keyword and pattern searched on its own), checks that both decide the
same, and prints a table.

    .venv/bin/python -m bench.rules_bench [--rules 1000] [--tags 700] [--reports 300]

Report text: titles and bodies of real Apache Hadoop issues from
/work/shared/data/duplicates/hadoop.jsonl (GitBugs, CC BY 4.0), 50-300 words each.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from integrations.report import Report
from rules.conditions import PRIORITY_RANK, fold
from rules.engine import compile_rules, evaluate
from rules.loader import parse_rules
from rules.model import (
    Action,
    AllOf,
    AnyOf,
    Condition,
    Not,
    RuleSet,
    When,
)
from rules.semver import Version
from rules.text import Text, words

# shared/ sits beside the repository (in development and in CI).
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "duplicates" / "hadoop.jsonl"
PLATFORMS = ["ios", "android", "web", "desktop", "api"]
SEVERITIES = ["low", "medium", "high", "critical"]
PRIORITIES = ["low", "normal", "high", "urgent"]
GROUPS = [f"Team {name}" for name in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"] + ["Support", "Billing"]
PATTERN_SHAPES = [
    r"{a} \d+",
    r"\b{a}\s+{b}\b",
    r"(?:{a}|{b})[- ]?{c}",
    r"{a}\w*ed\b",
    r"{a}[=:]\s*\S+",
]


# ---------------------------------------------------------------- data


def load_texts(limit: int, rng: random.Random) -> list[str]:
    """Real report texts of 50-300 words."""
    texts = []
    for line in DATA.read_text().splitlines():
        row = json.loads(line)
        text = f"{row['title']}\n{row['body'] or ''}"
        n = len(text.split())
        if n < 50:
            continue
        if n > 300:
            text = " ".join(text.split(" ")[:300])
        texts.append(text)
    rng.shuffle(texts)
    return texts[:limit]


def vocabulary() -> list[str]:
    """Words of the whole file by how many reports use them, less the most common 300.

    Support keywords name things ("invoice", "export", "sigsegv"), not "the" or
    "when": drawn from here, a report gets about as many tags as real ones do.
    """
    counts: Counter[str] = Counter()
    for line in DATA.read_text().splitlines():
        row = json.loads(line)
        text = f"{row['title']}\n{row['body'] or ''}"
        counts.update(w for w in set(words(text)) if w.isalpha() and len(w) > 3)
    ranked = [w for w, _ in counts.most_common()]
    return ranked[300:8000]


def make_taxonomy(rng: random.Random, vocab: list[str], n_tags: int) -> dict[str, Any]:
    """n_tags tags, each with 3-8 keywords (1-3 words) and, for one in six, a pattern."""
    taxonomy: dict[str, Any] = {}
    names = rng.sample(vocab, n_tags)
    for i, name in enumerate(names):
        keywords: set[str] = set()
        while len(keywords) < rng.randint(3, 8):
            n = rng.choice([1, 1, 1, 2, 2, 3])
            keywords.add(" ".join(rng.choice(vocab) for _ in range(n)))
        entry: dict[str, Any] = {"keywords": sorted(keywords)}
        if i % 6 == 0:
            shape = rng.choice(PATTERN_SHAPES)
            a, b, c = rng.sample(vocab, 3)
            entry["patterns"] = [shape.format(a=a, b=b, c=c)]
        taxonomy[f"t_{name}"] = entry
    return taxonomy


def make_condition(rng: random.Random, tags: list[str], vocab: list[str], depth: int = 0) -> Any:
    kind = rng.random()
    if depth < 2 and kind < 0.18:
        combinator = rng.choice(["all", "any"])
        return {combinator: [make_condition(rng, tags, vocab, depth + 1) for _ in range(2)]}
    if depth > 0 and kind < 0.22:
        return {"not": make_condition(rng, tags, vocab, depth + 1)}
    if kind < 0.55:
        op = rng.choice(["includes", "includes", "includes_all", "excludes"])
        return {"tags": {op: rng.sample(tags, rng.randint(1, 3))}}
    if kind < 0.72:
        return {"text": {"contains": rng.sample(vocab, rng.randint(1, 3))}}
    if kind < 0.76:
        a, b = rng.sample(vocab[:2000], 2)
        return {"text": {"matches": rf"\b{a}\b.*\b{b}"}}
    if kind < 0.84:
        return {"platform": rng.choice(PLATFORMS)}
    if kind < 0.89:
        major = rng.randint(3, 6)
        return {"app_version": f">={major}.{rng.randint(0, 9)}, <{major + 1}"}
    if kind < 0.94:
        return {"severity": rng.sample(SEVERITIES, 2)}
    return {"priority": {"at_least": rng.choice(PRIORITIES[1:])}}


def make_rules(rng: random.Random, taxonomy: dict[str, Any], vocab: list[str], n: int) -> str:
    """A rules file: n intake rules (first-level conditions on tags, words and fields)."""
    tags = list(taxonomy)
    chained: list[str] = []
    rules = []
    for i in range(n):
        # Like real triggers: one condition that picks the reports (a tag, words, or an
        # either-or of them), then 0-2 filters of any kind.
        pick = rng.random()
        if pick < 0.55:
            first: Any = {"tags": {"includes": rng.sample(tags + chained, rng.randint(1, 3))}}
        elif pick < 0.85:
            first = {"text": {"contains": rng.sample(vocab, rng.randint(1, 3))}}
        else:
            first = {
                "any": [
                    {"tags": {"includes": [rng.choice(tags)]}},
                    {"text": {"contains": [rng.choice(vocab)]}},
                ]
            }
        filters = [make_condition(rng, tags + chained, vocab) for _ in range(rng.randint(0, 2))]
        conditions = [first, *filters]
        actions: list[Any] = []
        if rng.random() < 0.5:
            actions.append({"set_group": rng.choice(GROUPS)})
        if rng.random() < 0.3:
            actions.append({"raise_priority": rng.choice(PRIORITIES[1:])})
        elif rng.random() < 0.1:
            actions.append({"set_priority": rng.choice(PRIORITIES)})
        if rng.random() < 0.4:
            # Rule-added tags that later rules test: the ordering semantics at work.
            added = f"r_{i}"
            chained.append(added)
            actions.append({"add_tags": [added]})
        if rng.random() < 0.05:
            actions.append({"remove_tags": [rng.choice(tags)]})
        if rng.random() < 0.04:
            actions.append(
                {"notify": {"channel": "#team", "text": "{subject} -> {group} ({priority})"}}
            )
        if rng.random() < 0.02:
            actions.append({"escalate": True})
        if not actions:
            actions.append({"set_type": "incident"})
        rule: dict[str, Any] = {"name": f"rule {i}", "when": {"all": conditions}, "then": actions}
        if rng.random() < 0.004:
            rule["stop"] = True
        rules.append(rule)
    doc = {
        "version": 1,
        "defaults": {"group": "Support", "priority": "normal"},
        "taxonomy": taxonomy,
        "intake": rules,
    }
    return json.dumps(doc)  # JSON is YAML: the loader reads it with line numbers all the same


def make_reports(rng: random.Random, texts: list[str]) -> list[Report]:
    reports = []
    for i, text in enumerate(texts):
        version = f"{rng.randint(3, 6)}.{rng.randint(0, 9)}.{rng.randint(0, 5)}"
        subject, _, description = text.partition("\n")
        reports.append(
            Report.model_validate(
                {
                    "source": rng.choice(["mobile", "slack_command"]),
                    "idempotency_key": f"bench-{i}",
                    "subject": subject,
                    "description": description or subject,
                    "fields": {
                        "platform": rng.choice(PLATFORMS),
                        "app_version": version,
                        "severity": rng.choice(SEVERITIES),
                    },
                    "received_at": "2026-01-07T11:00:00+00:00",
                }
            )
        )
    return reports


# ---------------------------------------------------------------- the straightforward way


class Straightforward:
    """Every rule's conditions evaluated by walking the rule data; every keyword its own regex."""

    def __init__(self, ruleset: RuleSet) -> None:
        self.ruleset = ruleset
        self.keywords: list[tuple[str, re.Pattern[str]]] = []
        self.patterns: list[tuple[str, re.Pattern[str]]] = []
        # Each rule's text conditions compiled once, as anyone would.
        self.compiled: dict[int, list[re.Pattern[str]]] = {}
        for rule in ruleset.intake:
            self._compile(rule.when)
        for tag in ruleset.taxonomy:
            for keyword in tag.keywords:
                # Matched on the casefolded text: a fairer baseline than re.I on each search.
                body = r"\W+".join(re.escape(w) for w in words(keyword))
                self.keywords.append((tag.tag, re.compile(rf"(?<!\w){body}(?!\w)")))
            for pattern in tag.patterns:
                self.patterns.append((tag.tag, re.compile(pattern, re.I)))

    def _compile(self, when: When | None) -> None:
        if isinstance(when, AllOf | AnyOf):
            for c in when.conditions:
                self._compile(c)
        elif isinstance(when, Not):
            self._compile(when.condition)
        elif isinstance(when, Condition) and when.kind == "text":
            if when.op == "matches":
                self.compiled[id(when)] = [re.compile(p, re.I) for p in when.values]
            else:
                self.compiled[id(when)] = [
                    re.compile(r"(?<!\w)" + r"\W+".join(map(re.escape, p)) + r"(?!\w)", re.I)
                    for p in when.values
                ]

    def decide(self, report: Report) -> dict[str, Any]:
        text = report.text
        f = report.fields
        facts: dict[str, Any] = {
            "platform": fold(f.platform) if f.platform else None,
            "severity": fold(f.severity) if f.severity else None,
            "source": report.source,
            "priority": self.ruleset.defaults.priority,
            "group": self.ruleset.defaults.group,
        }
        version = Version.parse(f.app_version) if f.app_version else None
        tags: set[str] = set()
        folded = text.casefold()
        for tag, regex in self.keywords:
            if regex.search(folded):
                tags.add(tag)
        for tag, regex in self.patterns:
            if regex.search(text):
                tags.add(tag)
        matched = []
        notes: list[tuple[str, str]] = []
        escalate = False
        for rule in self.ruleset.intake:
            if rule.when is not None and not self.holds(rule.when, text, tags, facts, version):
                continue
            matched.append(rule.index)
            for action in rule.then:
                escalate = self.apply(action, tags, facts, notes) or escalate
            if rule.stop:
                break
        return {
            "group": facts["group"],
            "priority": facts["priority"],
            "tags": sorted(tags),
            "matched": matched,
            "notes": notes,
            "escalate": escalate,
            "facts": facts,
            "subject": report.subject,
        }

    def holds(
        self, when: When, text: str, tags: set[str], facts: dict[str, Any], v: Version | None
    ) -> bool:
        if isinstance(when, AllOf):
            return all(self.holds(c, text, tags, facts, v) for c in when.conditions)
        if isinstance(when, AnyOf):
            return any(self.holds(c, text, tags, facts, v) for c in when.conditions)
        if isinstance(when, Not):
            return not self.holds(when.condition, text, tags, facts, v)
        assert isinstance(when, Condition)
        kind, op, values = when.kind, when.op, when.values
        if kind == "tags":
            present = [t in tags for t in values]
            return {
                "includes_any": any(present),
                "includes_all": all(present),
                "excludes_all": not any(present),
                "excludes_any": not all(present),
            }[op]
        if kind == "text":
            found = [regex.search(text) for regex in self.compiled[id(when)]]
            return any(found) if op in ("contains_any", "matches") else all(found)
        if kind == "app_version":
            return v is not None and values[0].contains(v)
        if kind == "priority":
            rank = PRIORITY_RANK.get(facts["priority"] or "", -1)
            return rank >= PRIORITY_RANK[values[0]]
        return facts.get(kind) in values

    def apply(
        self, action: Action, tags: set[str], facts: dict[str, Any], notes: list[Any]
    ) -> bool:
        kind, value = action.kind, action.value
        if kind == "add_tags":
            tags.update(value)
        elif kind == "remove_tags":
            tags.difference_update(value)
        elif kind == "set_group":
            facts["group"] = value
        elif kind == "set_priority":
            facts["priority"] = value
        elif kind == "raise_priority":
            if PRIORITY_RANK.get(facts["priority"] or "", -1) < PRIORITY_RANK[value]:
                facts["priority"] = value
        elif kind == "notify":
            notes.append((value.channel, value.template))
        elif kind == "escalate":
            return True
        return False


def same(hub: Any, naive: dict[str, Any]) -> bool:
    notes = [
        (channel, template.format(subject=naive["subject"], **naive["facts"]))
        for channel, template in naive["notes"]
    ]
    return (
        hub.group == naive["group"]
        and hub.priority == naive["priority"]
        and list(hub.tags) == naive["tags"]
        and [r.index for r in hub.matched_rules] == naive["matched"]
        and [(n.channel, n.text) for n in hub.notifications] == notes
        and hub.escalate == naive["escalate"]
    )


# ---------------------------------------------------------------- timing


def per_report(fn: Callable[[Report], Any], reports: list[Report], rounds: int) -> list[float]:
    """Microseconds per report, the best of `rounds` for each report (less noise)."""
    best = [float("inf")] * len(reports)
    for _ in range(rounds):
        for i, report in enumerate(reports):
            t0 = time.perf_counter()
            fn(report)
            best[i] = min(best[i], time.perf_counter() - t0)
    return [b * 1e6 for b in best]


def describe(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    return (
        statistics.fmean(ordered),
        ordered[len(ordered) // 2],
        ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))],
    )


def keyword_matchers(ruleset: RuleSet, texts: list[Text]) -> list[tuple[str, float]]:
    """The taxonomy's two steps alone, done the hub's way and the other ways considered."""
    from rules.taxonomy import Taxonomy

    taxonomy = Taxonomy(ruleset.taxonomy)
    out = []

    def timed(fn: Callable[[Text], Any]) -> float:
        t0 = time.perf_counter()
        for t in texts:
            fn(t)
        return (time.perf_counter() - t0) / len(texts) * 1e6

    out.append(("keywords: word sets + phrase index (the hub)", timed(taxonomy.keywords.found)))
    phrases = sorted(taxonomy.keyword_tags, key=lambda p: -len(" ".join(p)))
    big = re.compile(
        r"(?<!\w)(?:" + "|".join(r"\W+".join(map(re.escape, p)) for p in phrases) + r")(?!\w)"
    )
    out.append(("keywords: one alternation regex", timed(lambda t: set(big.findall(t.folded)))))
    literals = sorted({x for _, p, _ in taxonomy.patterns for x in p.literals or ()})
    out.append(
        (
            "pattern prefilter: substring checks on the whole text (before)",
            timed(lambda t: [x for x in literals if x in t.haystack]),
        )
    )
    out.append(
        (
            "pattern prefilter: Aho-Corasick, one pass (the hub, with Text.of)",
            timed(lambda t: taxonomy.literals.present(Text.of(t.original))),
        )
    )
    out.append(("  of which Text.of, once per report anyway", timed(lambda t: Text.of(t.original))))
    try:
        import ahocorasick  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        out.append(("pyahocorasick: not installed, not measured", float("nan")))
        return out
    automaton = ahocorasick.Automaton()
    for p in phrases:
        automaton.add_word(" " + " ".join(p) + " ", p)
    automaton.make_automaton()
    joined = timed(lambda t: {p for _, p in automaton.iter(" " + " ".join(t.tokens) + " ")})
    out.append(("keywords: pyahocorasick on the joined words", joined))
    literal_automaton = ahocorasick.Automaton()
    for x in literals:
        literal_automaton.add_word(x, x)
    literal_automaton.make_automaton()
    out.append(
        (
            "pattern prefilter: pyahocorasick",
            timed(lambda t: {x for _, x in literal_automaton.iter(t.haystack)}),
        )
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--tags", type=int, default=700)
    parser.add_argument("--reports", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3, help="best-of rounds for the hub")
    parser.add_argument("--seed", type=int, default=6)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    texts = load_texts(args.reports, rng)
    vocab = vocabulary()
    taxonomy = make_taxonomy(rng, vocab, args.tags)
    source = make_rules(rng, taxonomy, vocab, args.rules)
    reports = make_reports(rng, texts)

    t0 = time.perf_counter()
    ruleset = parse_rules(source, "bench.yml")
    t1 = time.perf_counter()
    compile_rules(ruleset)
    t2 = time.perf_counter()

    # The hub is timed first, alone: the straightforward evaluation's thousands of regexes
    # and objects would otherwise be walked by the hub's garbage collections (~10%).
    hub_times = per_report(lambda r: evaluate(r, ruleset), reports, args.rounds)
    naive = Straightforward(ruleset)
    mismatches = [
        r.idempotency_key for r in reports if not same(evaluate(r, ruleset), naive.decide(r))
    ]

    naive_times = per_report(naive.decide, reports, 1)
    decisions = [evaluate(r, ruleset) for r in reports]
    avg_tags = statistics.fmean(len(d.tags) for d in decisions)
    avg_matched = statistics.fmean(len(d.matched_rules) for d in decisions)
    avg_words = statistics.fmean(len(r.text.split()) for r in reports)

    print(f"$ .venv/bin/python -m bench.rules_bench {' '.join(sys.argv[1:])}".rstrip())
    load = os.getloadavg()[0]
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {load:.1f}")
    print(
        f"{len(ruleset.intake)} rules, {len(ruleset.taxonomy)} taxonomy tags "
        f"({sum(len(t.keywords) for t in ruleset.taxonomy)} keywords, "
        f"{sum(len(t.patterns) for t in ruleset.taxonomy)} patterns); "
        f"{len(reports)} reports of {avg_words:.0f} words on average; "
        f"{avg_tags:.1f} tags and {avg_matched:.1f} matching rules per report"
    )
    print(
        f"load {1000 * (t1 - t0):.0f} ms, compile {1000 * (t2 - t1):.0f} ms (once per file change)"
    )
    print()
    hub_mean, hub_p50, hub_p95 = describe(hub_times)
    naive_mean, naive_p50, naive_p95 = describe(naive_times)
    print("| per report | mean | p50 | p95 |")
    print("|---|---:|---:|---:|")
    print(f"| hub engine | {hub_mean:.0f} µs | {hub_p50:.0f} µs | {hub_p95:.0f} µs |")
    print(f"| straightforward | {naive_mean:.0f} µs | {naive_p50:.0f} µs | {naive_p95:.0f} µs |")
    print(
        f"| ratio | {naive_mean / hub_mean:.0f}x | {naive_p50 / hub_p50:.0f}x "
        f"| {naive_p95 / hub_p95:.0f}x |"
    )
    print()
    same_text = "all" if not mismatches else f"{len(reports) - len(mismatches)} of {len(reports)}"
    print(f"same decisions (group, priority, tags, rules matched, notifications): {same_text}")
    print()
    print("| taxonomy steps alone | per report |")
    print("|---|---:|")
    for name, micros in keyword_matchers(ruleset, [Text.of(r.text) for r in reports]):
        print(f"| {name} | {micros:.0f} µs |")
    if mismatches:
        print(f"MISMATCH on {mismatches[:5]}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
