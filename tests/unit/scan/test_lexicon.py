"""The English word lists and session phrases, read from the data files."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from turnwall.errors import ConfigurationError
from turnwall.scan import lexicon


@pytest.mark.parametrize(
    ("name", "present"),
    [
        ("transform-words", "rot13"),
        ("stopwords", "the"),
        ("common-output-words", "password"),
    ],
)
def test_word_lists_are_read_from_their_files(name: str, present: str) -> None:
    found = lexicon.words(name)

    assert present in found
    assert all(word == word.strip() and not word.startswith("#") for word in found)


@pytest.mark.parametrize(
    "name",
    [
        "reference",
        "request",
        "operational",
        "help-seeking",
        "historical",
        "first-person-ask",
        "framing",
        "refusal",
        "caution",
        "capability",
        "opinion",
        "subject-reference",
    ],
)
def test_every_session_cue_is_one_valid_pattern(name: str) -> None:
    assert re.compile(lexicon.cue(name)).groups == 0


def test_no_cue_line_ends_in_a_space_an_editor_would_strip() -> None:
    text = resources.files("turnwall.scan").joinpath("signatures", lexicon.CUES_FILE)

    assert [line for line in text.read_text().splitlines() if line.endswith(" ")] == []


def test_the_cues_read_the_phrases_they_name() -> None:
    assert re.search(lexicon.cue("refusal"), "i'm sorry, but i can't help with that")
    assert re.search(lexicon.cue("help-seeking"), "should we call poison control?")
    assert not re.search(lexicon.cue("operational"), "thanks, that was lovely")


def test_an_unknown_cue_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="no \\[nonesuch\\] section"):
        lexicon.cue("nonesuch")


def test_a_cue_names_another_section_to_share_its_list() -> None:
    acts = lexicon.cue("protective-acts")

    assert acts in lexicon.cue("protective-aim")
    assert acts in lexicon.cue("own-plan")
    assert "{{" not in lexicon.cue("protective-aim") + lexicon.cue("own-plan")


@pytest.mark.parametrize(
    "text",
    ["[a]\nx|{{nonesuch}}\n", "[a]\nx|{{b}}\n[b]\ny|{{c}}\n[c]\nz\n"],
)
def test_a_reference_to_no_section_or_to_a_referring_one_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    monkeypatch.setattr(lexicon, "_file", lambda name: text.encode())
    lexicon._cues.cache_clear()
    try:
        with pytest.raises(ConfigurationError, match="names no section"):
            lexicon.cue("a")
    finally:
        lexicon._cues.cache_clear()
