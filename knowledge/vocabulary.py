"""The domain vocabulary the retriever knows: phrases, synonyms and the English–German bridge.

Everything here is written as ordinary words; `knowledge.engine` stems them with the same
analyzer as the articles, so an entry works for every inflection the stemmer folds together.
Edit this file to teach the knowledge base a new synonym — then run `python -m bot eval knowledge`.
"""
from __future__ import annotations

import re

# Folded text (lower case, ä→ae, ß→ss) where a pattern matches is replaced by its tokens.
# Applied to articles and questions alike, so "2FA", "two-factor" and "MFA" meet, and
# "log in", "sign-in" and "login" are one word.
PHRASES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), f" {replacement} ")
    for pattern, replacement in (
        (r"\b(?:two|2)[\s-]*(?:factor|step)\b|\b2fa\b|\bmulti[\s-]*factor\b|\bmultifactor\b", "mfa"),
        (r"\bzwei[\s-]*faktor|\bzweistufig\w*|\bmehrstufig\w*|\bmehr[\s-]*faktor|\b2[\s-]*faktor", "mfa"),
        (r"\b(?:sign|log)(?:ged|ging|s)?[\s-]*(?:in|on)\b|\bsignin\b|\blogin\b|\blogon\b|\bsigning[\s-]+in\b", "signin"),
        (r"\be[\s-]mails?\b", "email"),
        (r"\bauto[\s-]*renew\w*|\bautomatic(?:ally)?\s+renew\w*", "autorenew"),
        (r"\bautomatische\w*\s+verlaengerung|\bautomatisch\s+verlaenger\w*", "autorenew"),
        (r"\bshared\s+mailbox(?:es)?\b", "sharedmailbox mailbox"),
        (r"\bfreigegebene\w*\s+postfa\w*|\bgemeinsame\w*\s+postfa\w*|\bfunktionspostfa\w*|\bteampostfa\w*", "sharedmailbox postfach"),
        (r"\bnew\s+(?:phone|mobile|iphone|android|smartphone|handset)\b", "newphone phone"),
        (r"\bneue\w*\s+(?:handy|telefon|smartphone|iphone)\b|\bhandywechsel\b|\btelefonwechsel\b", "newphone handy"),
        (r"\bself[\s-]*service\s+password(?:\s+reset)?\b|\bsspr\b", "sspr"),
        (r"\bpro[\s-]*rat(?:a|ed|e)\b|\banteilig\w*", "prorated"),
        (r"\bon[\s-]*call\b|\b24\s*/\s*7\b|\brund um die uhr\b", "247"),
    )
)

# Spelling variants folded into one token before stemming (British/American, abbreviations).
SPELLING: dict[str, str] = {
    "licence": "license",
    "licences": "licenses",
    "licenced": "licensed",
    "licencing": "licensing",
    "cancelation": "cancellation",
    "canceled": "cancelled",
    "canceling": "cancelling",
    "pw": "password",
    "pwd": "password",
    "passwd": "password",
    "mail": "email",
    "mails": "email",
    "emails": "email",
    "o365": "m365",
    "bought": "buy",
    "paid": "pay",
    "sent": "send",
    "mobile": "phone",
    "cellphone": "phone",
    "smartphone": "phone",
    "iphone": "phone",
    "synchronise": "sync",
    "synchronize": "sync",
    "syncing": "sync",
    "synced": "sync",
    "synchronisation": "sync",
    "synchronization": "sync",
    "synchronisieren": "sync",
    "synchronisiert": "sync",
    "synchronisierung": "sync",
    "authentifizierung": "authentication",
}

# Never stemmed: product names and tokens whose stem would collide with ordinary words.
PROTECTED = frozenset(
    """
    outlook teams onedrive sharepoint exchange defender authenticator intune entra windows microsoft
    office mfa sspr signin email autorenew sharedmailbox newphone prorated m365 e3 e5 f3 nce csp
    businessbasic businessstandard businesspremium phishing spam 247 ios android
    """.split()
)

# Words the German compound splitter may use as parts, beyond the words of the German articles.
GERMAN_LEXICON = frozenset(
    """
    lizenz lizenzen kuendigung kuendigen frist fenster zeitraum rechnung rechnungen abrechnung
    passwort kennwort konto konten benutzer nutzer postfach speicher speicherplatz platz gast gaeste
    zugang zugriff telefon handy nummer geraet sicherheit code vertrag laufzeit verlaengerung
    zahlung monat jahr test version gebuehr kosten preis anmeldung fehler meldung problem support
    fall zeit reaktion service stufe faktor methode authentifizierung einstellung verwaltung admin
    administrator rolle besprechung kamera mikrofon bildschirm freigabe datei dateien ordner
    archiv grenze limit groesse nachricht kunde anzahl menge erstattung gutschrift abonnement
    bestellung stunde stunden woche schutz bericht richtlinie wiederherstellung sperre portal
    mitarbeiter ticket anfrage prioritaet dringend notfall ausfall stoerung zeiten bearbeitung
    """.split()
)

# Same-language equivalents: each word of a group also finds the others (weight SYNONYM_WEIGHT).
SYNONYMS: dict[str, tuple[str, ...]] = {
    "en": (
        "license seat",
        "invoice bill charge statement",
        "cancel cancellation terminate unsubscribe",
        "decrease reduce lower downgrade fewer",
        "case ticket incident request",
        "open raise submit",
        "support helpdesk hotline servicedesk",
        "urgent critical emergency outage",
        "guest external visitor",
        "storage quota space",
        "phishing spam scam suspicious fraud",
        "audio sound microphone mic headset",
        "camera video webcam",
        "trial evaluation",
        "leaver offboard offboarding quit departure",
        "onboard onboarding hire starter joiner newcomer",
        "remove delete unassign",
        "compare comparison difference versus",
        "price cost",
        "order buy purchase",
        "laptop computer pc notebook desktop",
        "arrive receive",
        "admin administrator",
        "mailbox inbox",
        "locked blocked",
        "term commitment contract",
        "annual yearly year",
        "monthly month",
        "reset recover restore",
        "password passphrase",
        "respond response reply",
        "hours availability available",
        "phone newphone",
        "mfa authenticator",
        "sspr reset",
    ),
    "de": (
        "kuendigen kuendigung stornieren stornierung",
        "rechnung abrechnung faktura",
        "passwort kennwort",
        "handy telefon",
        "reduzieren verringern senken",
        "ticket supportfall anfrage stoerung",
        "reagieren reagiert reaktion reaktionszeit",
        "teuer teurer hoeher",
        "dringend kritisch notfall ausfall",
        "gast extern",
        "speicher speicherplatz",
        "erreichbar erreichbarkeit geschaeftszeiten servicezeiten oeffnungszeiten",
        "verlaengerung erneuerung",
        "mitarbeiter benutzer nutzer",
        "entfernen loeschen",
        "jaehrlich jahr",
        "monatlich monat",
        "handy newphone",
        "mfa authenticator",
    ),
}

# The cross-language bridge: German words ↔ English words of the same meaning. A question in
# one language also looks for the other language's words (weight BRIDGE_WEIGHT), so a German
# question finds an article that exists only in English, and the other way round.
BRIDGE: tuple[tuple[str, str], ...] = (
    ("kuendigen kuendigung stornieren stornierung", "cancel cancellation"),
    ("lizenz lizenzen", "license licenses seat"),
    ("rechnung rechnungen", "invoice invoices"),
    ("abrechnung abrechnungszeitraum", "billing"),
    ("passwort kennwort", "password"),
    ("verlaengerung verlaengern erneuerung", "renewal renew"),
    ("zuruecksetzen", "reset"),
    ("handy telefon mobiltelefon", "phone"),
    ("anmelden anmeldung einloggen", "signin"),
    ("postfach postfaecher", "mailbox"),
    ("speicher speicherplatz", "storage"),
    ("voll", "full"),
    ("gast gaeste", "guest"),
    ("extern externe", "external"),
    ("besprechung besprechungen meeting", "meeting"),
    ("benutzer nutzer mitarbeiter", "user employee"),
    ("hinzufuegen anlegen", "add create"),
    ("neu neuer neue", "new"),
    ("entfernen", "remove"),
    ("zuweisen zuordnen", "assign"),
    ("testversion testphase test", "trial"),
    ("monatlich", "monthly"),
    ("jaehrlich", "annual"),
    ("laufzeit vertragslaufzeit", "term commitment"),
    ("erstattung gutschrift", "refund credit"),
    ("anteilig", "prorated"),
    ("ticket supportfall anfrage", "case ticket"),
    ("supportzeiten servicezeiten erreichbarkeit geschaeftszeiten", "hours"),
    ("prioritaet", "priority"),
    ("dringend kritisch notfall", "urgent critical"),
    ("reaktionszeit", "response"),
    ("synchronisierung", "sync"),
    ("geraet", "device"),
    ("verloren", "lost"),
    ("gesperrt sperre", "locked blocked"),
    ("melden", "report"),
    ("verdaechtig", "suspicious"),
    ("vergleich unterschied", "comparison difference"),
    ("preis kosten", "price cost"),
    ("sicherheit", "security"),
    ("kalender", "calendar"),
    ("kamera", "camera"),
    ("mikrofon ton", "microphone audio"),
    ("bildschirm", "screen"),
    ("reduzieren verringern", "decrease reduce"),
    ("erhoehen", "increase"),
    ("anzahl menge", "quantity number"),
    ("frist zeitraum", "window period"),
    ("tage", "days"),
    ("bestellen bestellung", "order"),
    ("zahlung bezahlen", "payment pay"),
    ("abonnement", "subscription"),
    ("administrator", "admin administrator"),
    ("freigeben teilen", "share"),
    ("datei dateien", "file files"),
    ("ordner", "folder"),
    ("nachricht nachrichten", "message"),
    ("archiv", "archive"),
    ("einladen einladung", "invite invitation"),
    ("code", "code"),
    ("wechsel wechseln", "change switch"),
    ("vergessen", "forgot"),
    ("funktioniert", "works"),
    ("stunde stunden", "hour hours"),
    ("wochenende", "weekend"),
    ("support", "support"),
    ("eroeffnen", "open"),
    ("zugriff zugang", "access"),
    ("abmelden", "sign out"),
    ("ablaufen ablauf ablaeuft abgelaufen", "expire expired end"),
    ("ausschalten abschalten deaktivieren", "turn disable"),
    ("einschalten aktivieren", "turn enable"),
    ("teuer teurer hoeher", "higher expensive"),
    ("lieferant lieferanten", "supplier"),
    ("einrichten einrichtung", "set setup configure"),
    ("reagieren reagiert reaktion", "respond response"),
    ("schnell", "fast quickly"),
)

# Separable German verbs: "schalte … aus" is looked up as "ausschalten" too.
GERMAN_VERB_PARTICLES = ("zurueck", "aus", "ein", "zu", "ab", "an", "auf", "um", "hinzu")

SYNONYM_WEIGHT = 0.8
BRIDGE_WEIGHT = 0.7
OTHER_STEMMER_WEIGHT = 0.8
FUZZY_WEIGHT = 0.6
# A question word that no article contains counts, for coverage, like this share of a word that
# only one article contains ("pizza", "Bitcoin" make a question less likely to be answered).
UNKNOWN_WORD_WEIGHT = 0.75
