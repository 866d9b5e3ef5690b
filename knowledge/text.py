"""Turning English and German text into index terms: folding, tokens, stop words, stems, compounds.

Index and query go through the same `Analyzer`, so whatever it does (umlaut folding, phrase
tokens, German compound parts) is applied consistently on both sides.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

import snowballstemmer

from knowledge.vocabulary import GERMAN_LEXICON, PHRASES, PROTECTED, SPELLING

LANGUAGES = ("en", "de")

# Ordinary function words and chat filler; domain words (licence, invoice...) are never here.
ENGLISH_STOP_WORDS = frozenset(
    """
    a about above after again against all also am an and any are aren as at be because been before
    being below between both but by can cannot could couldn did didn do does doesn doing don down
    during each else even ever every few for from further get gets getting got had hadn has hasn have
    haven having he her here hers herself him himself his how however i if in into is isn it its itself
    just let ll me might more most much must mustn my myself need needs no nor not now of off on once
    only or other our ours ourselves out over own please re really same shall she should shouldn so
    some still such t than that the their theirs them themselves then there these they this those
    through to too under until up us ve very was wasn we were weren what when where whether which while
    who whom why will with won would wouldn you your yours yourself yourselves hi hello hey thanks
    thank help anyone someone something anything tell know want wants trying try tried way ok okay
    s d m y going keep keeps since already yet able possible hmm guys pls plz happen happens
    happened say says said
    """.split()
)

GERMAN_STOP_WORDS = frozenset(
    unicodedata.normalize("NFC", w)
    for w in """
    aber alle allem allen aller alles als also am an ander andere anderem anderen anderer anderes auch auf
    aus bei beim bin bis bist bitte da dabei damit dann das dass dein deine deinem deinen deiner dem den
    denn der des dessen dich die dies diese diesem diesen dieser dieses dir doch dort du durch ein eine
    einem einen einer eines einmal er es etwas euch euer eure für gegen gewesen hab habe haben hat hatte
    hatten hier hin hinter ich ihm ihn ihnen ihr ihre ihrem ihren ihrer im in indem ins ist ja jede jedem
    jeden jeder jedes jetzt kann kannst können könnte könnten man manche mehr mein meine meinem meinen
    meiner mich mir mit muss musst müssen nach nicht nichts noch nun nur ob oder ohne sehr sein seine
    seinem seinen seiner selbst sich sie sind so soll sollen sollte solche sondern sonst um und uns unser
    unsere unter viel vom von vor war waren warum was weg weil welche welchem welchen welcher wenn wer
    werde werden wie wieder will wir wird wirst wo woher wohin wollen würde würden zu zum zur zwar
    zwischen hallo danke vielen gibt geht gehen mal eigentlich gerne kein keine keinen keiner immer
    schon bereits irgendwie jemand bekommen bekomme kriege kriegen machen mache mach tun wieso weshalb
    wann womit wozu worauf hilfe brauche brauchen frage fragen leider einfach ganz ab dazu davon
    passiert passieren tun
    """.split()
)

_STOP = {"en": ENGLISH_STOP_WORDS, "de": GERMAN_STOP_WORDS}

_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})
_TOKEN = re.compile(r"[a-z0-9]+")
_WORD = re.compile(r"[^\W_]+")


def fold(text: str) -> str:
    """Lower-case, fold umlauts to ae/oe/ue and ß to ss, drop other accents (é → e)."""
    text = unicodedata.normalize("NFC", text).lower().translate(_UMLAUTS)
    text = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in text if not unicodedata.combining(ch))


_FOLDED_STOP = {lang: frozenset(fold(w) for w in words) for lang, words in _STOP.items()}


def is_stop_word(folded_token: str, language: str) -> bool:
    return folded_token in _FOLDED_STOP[language]


def tokens(text: str) -> list[str]:
    """Folded word tokens of `text`, phrases replaced by their tokens (e.g. "two-factor" → "mfa")."""
    folded = fold(text)
    for pattern, replacement in PHRASES:
        folded = pattern.sub(replacement, folded)
    return [SPELLING.get(t, t) for t in _TOKEN.findall(folded)]


# --- language of a question -------------------------------------------------------------------

_EN_EVIDENCE = frozenset(
    """the is are do does how why what can can't cannot my i you to of and with for it this that have
    has my our we not doesn't don't won't isn't should where when which a an get got please there
    be been will would""".split()
)
_DE_EVIDENCE = frozenset(
    """der die das ist sind wie warum was kann ich mein meine meinen nicht und mit für es wir
    unser unsere ein eine einen zu zum zur bei auf den dem des wo wann sich habe hat haben kein
    keine bitte geht mehr noch auch oder aber wieso welche werden wird muss können kann gibt""".split()
)
_GERMAN_SUFFIXES = ("ung", "ungen", "keit", "heit", "lich", "schaft", "ieren", "chen")
_ENGLISH_SUFFIXES = ("ing", "tion", "ed", "ly")


def detect_language(text: str, default: str = "en") -> str:
    """'de' or 'en' for a short question, by function words, umlauts/ß and typical endings.

    Ties (e.g. "MFA reset", "Outlook") go to `default`, usually the user's Teams locale.
    """
    lowered = unicodedata.normalize("NFC", text).lower()
    words = _WORD.findall(lowered.replace("'", "").replace("’", ""))
    de = sum(1.0 for w in words if w in _DE_EVIDENCE)
    en = sum(1.0 for w in words if w in _EN_EVIDENCE)
    de += 1.5 * sum(1 for w in words if any(ch in w for ch in "äöüß"))
    for w in words:
        if len(w) > 5 and w.endswith(_GERMAN_SUFFIXES):
            de += 0.5
        elif len(w) > 5 and w.endswith(_ENGLISH_SUFFIXES):
            en += 0.5
    if de > en:
        return "de"
    if en > de:
        return "en"
    return default if default in LANGUAGES else "en"


# --- stems and compounds ---------------------------------------------------------------------


class Analyzer:
    """Folded tokens → stems for one language, with German compound parts.

    `german_words` extends the built-in German lexicon that compound splitting may use; the
    knowledge base passes the words of its German articles.
    """

    MIN_PART = 4  # shortest surface part a compound may be split into
    MIN_COMPOUND = 8  # shortest word that is tried as a compound

    def __init__(self, german_words: Iterable[str] = ()) -> None:
        self._stemmers = {
            "en": snowballstemmer.stemmer("english"),
            "de": snowballstemmer.stemmer("german"),
        }
        self._cache: dict[tuple[str, str], str] = {}
        self._compound_cache: dict[str, tuple[str, ...]] = {}
        lexicon = {fold(w) for w in GERMAN_LEXICON}
        lexicon.update(fold(w) for w in german_words)
        self._german_stems = {
            self.stem(w, "de") for w in lexicon if len(w) >= self.MIN_PART and not is_stop_word(w, "de")
        }

    def stem(self, folded_token: str, language: str) -> str:
        key = (folded_token, language)
        cached = self._cache.get(key)
        if cached is None:
            if folded_token in PROTECTED or not folded_token.isalpha():
                cached = folded_token
            else:
                cached = self._stemmers[language].stemWord(folded_token)
            self._cache[key] = cached
        return cached

    def compound_parts(self, folded_token: str) -> tuple[str, ...]:
        """Stems of the parts of a German compound ("lizenzkuendigung" → lizenz, kundig), or ()."""
        cached = self._compound_cache.get(folded_token)
        if cached is None:
            cached = self._split(folded_token, depth=0) if folded_token.isalpha() else ()
            self._compound_cache[folded_token] = cached
        return cached

    def _known(self, part: str) -> bool:
        return len(part) >= self.MIN_PART and self.stem(part, "de") in self._german_stems

    def _split(self, word: str, depth: int) -> tuple[str, ...]:
        if len(word) < self.MIN_COMPOUND or depth > 2 or word in PROTECTED:
            return ()
        # Longest head first: "kuendigungsfrist" → "kuendigungs|frist" before shorter heads.
        for cut in range(len(word) - self.MIN_PART, self.MIN_PART - 1, -1):
            head, tail = word[:cut], word[cut:]
            heads = [head]
            if head.endswith("s") and len(head) > self.MIN_PART:  # linking -s- (Kündigungsfrist)
                heads.append(head[:-1])
            known_head = next((h for h in heads if self._known(h)), None)
            if known_head is None:
                continue
            if self._known(tail):
                return (self.stem(known_head, "de"), self.stem(tail, "de"))
            rest = self._split(tail, depth + 1)
            if rest:
                return (self.stem(known_head, "de"), *rest)
        return ()

    def terms(self, text: str, language: str) -> list[str]:
        """Index terms of `text` written in `language`: stems without stop words, plus compound parts."""
        out: list[str] = []
        for token in tokens(text):
            if is_stop_word(token, language) or (len(token) < 2 and not token.isdigit()):
                continue
            out.append(self.stem(token, language))
            if language == "de":
                out.extend(self.compound_parts(token))
        return out
