"""Tokens, stems, German compounds, the bridge, and the language of a question."""
from __future__ import annotations

import pytest

from knowledge.text import Analyzer, detect_language, fold, tokens


def test_fold_umlauts_and_sharp_s_consistently() -> None:
    assert fold("Kündigung") == "kuendigung"
    assert fold("GRÖSSE größe") == "groesse groesse"
    assert fold("Café") == "cafe"


def test_phrases_become_one_token() -> None:
    assert "mfa" in tokens("two-factor authentication") and "mfa" in tokens("2FA") and "mfa" in tokens("Zwei-Faktor-Authentifizierung")
    assert "signin" in tokens("can't log in") and "signin" in tokens("sign-in") and "signin" in tokens("Login")
    assert "license" in tokens("licence")
    assert "email" in tokens("E-Mail")


def test_english_and_german_stemming() -> None:
    an = Analyzer()
    assert an.terms("cancelled cancelling cancellation", "en") == ["cancel"] * 3
    assert set(an.terms("Rechnungen Rechnung", "de")) == {"rechnung"}
    assert an.terms("kündigen", "de") == an.terms("kuendigen", "de")


def test_stop_words_are_dropped() -> None:
    an = Analyzer()
    assert an.terms("how do I get the", "en") == []
    assert an.terms("wie kann ich das", "de") == []


def test_product_names_are_not_stemmed() -> None:
    an = Analyzer()
    assert an.terms("Teams Outlook Exchange", "en") == ["teams", "outlook", "exchange"]


@pytest.mark.parametrize(
    ("word", "parts"),
    [
        ("Lizenzkündigung", ("lizenz", "kundig")),
        ("Kündigungsfrist", ("kundig", "frist")),
        ("Passwortzurücksetzung", ()),  # "zuruecksetzung" is not in the lexicon: left whole
        ("Speicherplatz", ("speich", "platz")),
    ],
)
def test_german_compound_splitting(word: str, parts: tuple[str, ...]) -> None:
    assert Analyzer().compound_parts(fold(word)) == parts


def test_compound_splitting_uses_the_corpus_words() -> None:
    assert Analyzer().compound_parts("druckerwarteschlange") == ()
    assert Analyzer(["Drucker", "Warteschlange"]).compound_parts("druckerwarteschlange") == ("druck", "warteschlang")


def test_compound_terms_keep_the_whole_word() -> None:
    an = Analyzer()
    terms = an.terms("Lizenzkündigung", "de")
    assert terms[0] == an.stem("lizenzkuendigung", "de") and {"lizenz", "kundig"} <= set(terms)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Warum kann ich die Lizenz nicht mehr kündigen?", "de"),
        ("Passwörter vergessen", "de"),
        ("Mein Konto ist gesperrt", "de"),
        ("Handy verloren, MFA zurücksetzen", "de"),
        ("Wo finde ich meine Rechnung?", "de"),
        ("how do I reset my password", "en"),
        ("outlook keeps asking for my password", "en"),
        ("I can't log in", "en"),
        ("what is the SLA for critical incidents", "en"),
    ],
)
def test_detect_language(text: str, language: str) -> None:
    assert detect_language(text, default="en") == language
    assert detect_language(text, default="de") == language


def test_detect_language_ties_go_to_the_default() -> None:
    # Without function words or umlauts there is no evidence: the user's locale decides.
    assert detect_language("Passwort vergessen", default="de") == "de"
    assert detect_language("Passwort vergessen", default="en") == "en"
    assert detect_language("MFA", default="de") == "de"
    assert detect_language("Outlook", default="en") == "en"
    assert detect_language("", default="fr") == "en"
