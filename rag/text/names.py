"""Names in a sentence (people, places, organisations, months), matched across Italian and English.

The citation check uses this to refuse a sentence that names someone or
something its cited sentence does not: "Mario Draghi ha firmato l'accordo"
cited to "Putin ha firmato un accordo…" shares most of its words, but not the
one that matters. A name is a capitalised word (or an acronym) that is not a
function word; the first word of a sentence counts unless it is a common
opening word. Names match when equal after folding accents and case, when one
is a prefix of the other beyond a few letters ("Russia"/"russi", "Europa"/"European"),
or through a short table of English/Italian exonyms ("North Korea"/"Corea del Nord",
"the West"/"l'Occidente"). Months and weekdays are dates, left to the number check.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
# Common sentence openers and function words that are capitalised only by position.
_OPENERS = frozenset(
    """the a an this that these those it its he she they we you i there here in on at by for from of to with
    after before during when while since since yet so but and or if then also however both according
    yesterday today tomorrow meanwhile instead still already now thus therefore
    il lo la i gli le un uno una questo questa questi queste quello quella quelli quelle esso essa essi esse
    egli ella lui lei loro noi voi io ci c è e ed o ma se poi anche però tuttavia entrambi secondo ieri oggi
    domani intanto invece ancora già ora quindi dunque dopo prima durante mentre nel nella nei negli nelle
    al alla ai agli alle del della dei degli delle dal dalla dai dagli dalle con per tra fra su sul sulla
    non sì no yes not""".split()
)
# Words of names that differ between English and Italian, folded; each group's words are one name.
_EXONYM_GROUPS = [
    "north nord", "south sud", "east est oriente orientale", "west ovest occidente occidentale occidentali",
    "korea corea", "korean koreans coreano coreana coreani coreane", "united uniti", "states stati",
    "us usa uniti", "ukraine ucraina", "ukrainian ucraino ucraina ucraini", "moscow mosca",
    "russian russians russo russa russi", "american americans americano americana americani",
    "europe europa", "european europeo europea europei", "union unione", "italy italia",
    "italian italians italiano italiana italiani", "germany germania", "german germans tedesco tedesca tedeschi",
    "france francia", "french francese francesi", "spain spagna", "china cina", "chinese cinese cinesi",
    "japan giappone", "japanese giapponese giapponesi", "britain bretagna", "british britannico britannici",
    "london londra", "rome roma", "milan milano", "turin torino", "naples napoli", "florence firenze",
    "venice venezia", "genoa genova", "sicily sicilia", "sardinia sardegna", "lombardy lombardia",
    "tuscany toscana", "piedmont piemonte", "vatican vaticano", "pope papa", "kingdom regno", "square piazza",
    "syria siria", "turkey turchia", "egypt egitto", "greece grecia", "switzerland svizzera", "poland polonia",
    "belarus bielorussia", "un onu", "eu ue", "kremlin cremlino", "white bianca", "house casa",
    "senate senato", "parliament parlamento", "government governo", "minister ministro ministra",
    "prime primo", "ministry ministero", "interior interno", "court corte tribunale", "constitutional costituzionale",
    "chamber camera", "deputies deputati", "council consiglio", "commission commissione", "president presidente",
    "police polizia", "holy santa", "see sede", "netherlands olanda", "belgium belgio", "austria austria",
    "portugal portogallo", "hungary ungheria", "romania romania", "norway norvegia", "sweden svezia",
    "denmark danimarca", "finland finlandia", "ireland irlanda", "scotland scozia", "england inghilterra",
    "israel israele", "lebanon libano", "palestinian palestinese palestinesi", "gaza gaza", "africa africa",
    "libya libia", "tunisia tunisia", "morocco marocco", "mexico messico", "brazil brasile", "india india",
    "army esercito", "navy marina", "air aeronautica aerea", "force forze forza", "republic repubblica",
    "democratic democratico democratica", "party partito", "league lega", "brothers fratelli",
    "supreme suprema", "general generale", "secretary segretario", "foreign esteri estero", "affairs affari",
    "defence defense difesa", "muslim muslims musulmano musulmana musulmani musulmane",
    "islamic islamico islamica islamici islamiche", "christian christians cristiano cristiana cristiani",
    "catholic catholics cattolico cattolica cattolici", "jewish jews ebreo ebrea ebrei ebraico ebraica",
    "protestant protestants protestante protestanti", "orthodox ortodosso ortodossa ortodossi",
    "rhine reno", "danube danubio", "thames tamigi", "nile nilo", "seine senna",
]
# English capitalises the common nouns and adjectives of a name ("the Mongol Empire", "the War
# of Barbastro", "the Charles River", "Church dogma"); Italian writes them lower-case ("l'impero
# mongolo", "la guerra di Barbastro"). In an English claim about an Italian passage they are
# not names to find there: the name's other words are ("Mongol", "Barbastro", "Charles").
# Deliberately a short list of such words, not a dictionary: a dictionary's "ordinary" words
# include surnames and places ("Baker", "Warsaw"), which must still be found.
_ENGLISH_NAME_NOUNS = frozenset(
    """empire kingdom republic dynasty war wars battle revolution crisis treaty pact accord agreement act
    acts law laws constitution declaration convention charter church cathedral chapel abbey basilica
    monastery mosque temple synagogue cemetery court justice tribunal report reports summary assessment
    review survey study plan programme program strategy mission project bridge river rivers valley lake
    lakes mountain mountains mount island islands sea ocean gulf bay coast peninsula desert forest plain
    canal falls hills street road avenue square palace castle tower gate wall park garden hall
    university college school academy institute museum gallery library theatre theater stadium
    arena hospital airport station port harbour harbor center centre council committee commission
    agency bureau office department ministry authority board assembly congress party union league
    association federation society foundation fund bank company corporation group club team cup trophy
    prize award championship games festival conference summit forum prison camp base fort army navy
    corps guard fleet division front era age period world national international royal imperial
    federal supreme high grand great new old upper lower central northern southern eastern western
    first second third fourth fifth annual general policymakers spacecraft space flight network
    service system art arts""".split()
)
# Titles before a name are not names ("Mr Draghi" names Draghi).
_TITLES = frozenset("mr mrs ms dr prof sig signor signora dott dottor dottoressa sen on".split())
_EQUIVALENTS: dict[str, set[str]] = {}
for _group in _EXONYM_GROUPS:
    for _word in _group.split():
        _EQUIVALENTS.setdefault(_word, set()).update(_group.split())
# Months are dates, checked by ``missing_months`` ("June 2024" states what "2024-06" does).
_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            "january gennaio", "february febbraio", "march marzo", "april aprile", "may maggio", "june giugno",
            "july luglio", "august agosto", "september settembre", "october ottobre", "november novembre",
            "december dicembre",
        ),
        1,
    )
    for name in names.split()
}
_DATES = frozenset(_MONTHS) | frozenset(
    "monday tuesday wednesday thursday friday saturday sunday lunedi martedi mercoledi giovedi venerdi sabato "
    "domenica".split()
)
# Numeric months in dates: 2024-06, 06/2024, 12/06/2024, 12.06.2024.
_NUMERIC_MONTH = re.compile(r"\b\d{4}-(\d{1,2})\b|\b(\d{1,2})/\d{4}\b|\b\d{1,2}[/.](\d{1,2})[/.]\d{2,4}\b")
_SHARED_PREFIX = 5


@lru_cache(maxsize=65536)
def _fold(word: str) -> str:
    folded = unicodedata.normalize("NFKD", word.lower().replace("’", "'"))
    return "".join(c for c in folded if not unicodedata.combining(c))


def _name_parts(word: str) -> list[str]:
    """The capitalised parts of one word ("D'Alema" -> ["alema"]), folded; no function
    words, titles or dates."""
    return [
        _fold(part)
        for part in re.split(r"['’-]", word)
        if len(part) >= 2 and part[0].isupper() and _fold(part) not in _OPENERS | _DATES | _TITLES
    ]


def name_phrases(text: str) -> list[list[str]]:
    """The names of ``text``, each a run of capitalised words, folded ("Vladimir Putin" ->
    ["vladimir", "putin"]); no function words, titles or dates.

    A capitalised word opening a sentence ("Police found…", "Sanctions against…") is a
    name only when the next word is capitalised too ("Mario Draghi signed…"): a lone
    capitalised opener is usually an ordinary word.
    """
    phrases: list[list[str]] = []
    words = list(_WORD.finditer(text))
    previous_end = -1
    for i, m in enumerate(words):
        gap = text[words[i - 1].end() : m.start()] if i else ""
        opener = i == 0 or bool(re.search(r"[.!?:;]\s*$", gap))
        if opener and not (i + 1 < len(words) and words[i + 1].group()[:1].isupper()):
            continue
        parts = _name_parts(m.group())
        if not parts:
            continue
        joined = previous_end == i - 1 and phrases and not re.search(r"[^\s]", gap)
        if joined:
            phrases[-1].extend(parts)
        else:
            phrases.append(parts)
        previous_end = i
    return phrases


def names(text: str) -> set[str]:
    """Every word of the names of ``text`` (see :func:`name_phrases`)."""
    return {word for phrase in name_phrases(text) for word in phrase}


def _words(text: str) -> set[str]:
    return {_fold(p) for w in _WORD.findall(text) for p in re.split(r"['’-]", w) if p}


def _same(name: str, word: str) -> bool:
    """Equal, one the other's inflection (a prefix beyond a few letters, or the same stem), or
    part of a compound ("nord" and "coreano" in "nordcoreano")."""
    if name == word:
        return True
    if len(name) >= 4 and (word.startswith(name) or (len(name) >= 6 and name in word)):
        return True
    if min(len(name), len(word)) < _SHARED_PREFIX:
        return False
    return name.startswith(word) or name[: _SHARED_PREFIX + 1] == word[: _SHARED_PREFIX + 1]


def missing_months(claim: str, passage: str) -> set[str]:
    """Months ``claim`` names (in either language; "May" only capitalised, not the verb) that
    ``passage`` states neither by name nor as a number in a date."""
    said = {_fold(w) for w in _WORD.findall(claim) if _fold(w) in _MONTHS and (w[0].isupper() or _fold(w) != "may")}
    if not said:
        return set()
    stated = {_MONTHS[w] for w in _words(passage) if w in _MONTHS}
    stated |= {int(n) for m in _NUMERIC_MONTH.finditer(passage) for n in m.groups() if n}
    return {month for month in said if _MONTHS[month] not in stated}


def missing_names(claim: str, passage: str, english_claim: bool = False) -> set[str]:
    """Names of ``claim`` that ``passage`` does not contain (in either language). A name of
    several words needs only its last one there: "Vladimir Putin" is named by "Putin",
    "Prime Minister Meloni" by "Meloni"; "Mario Draghi" is not named by "Mario Rossi".
    ``english_claim``: the claim is English and the passage is not, so the common nouns
    English capitalises in names ("Empire", "River") are left out: "the Mongol Empire" is
    named by "mongolo", "Church dogma" needs no name."""
    have = _words(passage)

    def present(word: str) -> bool:
        return any(_same(alias, w) for alias in _EQUIVALENTS.get(word, {word}) for w in have)

    missing = set()
    for phrase in name_phrases(claim):
        if present(phrase[-1]):
            continue
        # Its last word other than such nouns, if any; the last word itself may be there too
        # ("Dream College" named by "college"), so this only ever excuses more.
        # Reported by its last word, as the question's names are (``grounded_names``).
        own = [w for w in phrase if w not in _ENGLISH_NAME_NOUNS] if english_claim else phrase
        if own and (own[-1] == phrase[-1] or not present(own[-1])):
            missing.add(phrase[-1])
    return missing


def _capitalised(text: str) -> set[str]:
    return {part for w in _WORD.findall(text) for part in _name_parts(w)}


def new_names(answer: str, question: str, cited: str) -> set[str]:
    """Capitalised words of ``answer`` (a sentence's first word too, unless a common opener:
    "Jochi.") that ``question`` does not contain and ``cited`` writes capitalised too: what a
    reply to "What is the name of…?" brings. The last condition leaves out English demonyms
    ("the Russian president", "the Albanian man"), which Italian writes in lower case.
    Against the question, a word must be the same or an inflection of one of its words
    ("Bologna"/"bolognese"), not merely share a stem ("Comencini" is not "come", "Francesca"
    not "Francesco")."""
    words, asked, proper = _words(question), names(question), _capitalised(cited)

    def in_question(name: str) -> bool:
        if name in words:
            return True
        # A name of the question in another form ("Russia"/"Russian"); its gender inflection
        # is another person ("Francesca" is not "Francesco").
        if any(len(min(name, w, key=len)) >= 4 and (name.startswith(w) or w.startswith(name)) for w in asked):
            return True
        # A lower-case word derived from it: "bolognese" asks about "Bologna".
        stem = name[:-1] if name[-1] in "aeiou" else name
        return len(stem) >= 5 and any(w.startswith(stem) for w in words - asked)

    return {
        name
        for name in _capitalised(answer)
        if not in_question(name)
        and any(_same(alias, p) for alias in _EQUIVALENTS.get(name, {name}) for p in proper)
    }


def grounded_names(question: str, passages: list[str]) -> frozenset[str]:
    """Names of ``question`` (as :func:`missing_names` gives them) that one of ``passages``
    contains. The caller passes the passages of one article: an answer repeating such a name
    invents nothing, though the sentence it cites from that article names the place or
    person only by context ("il bar di Solignano", asked; "il titolare … ha messo in fuga i
    ladri", cited). A name found only in another article is no such excuse."""
    asked = {phrase[-1] for phrase in name_phrases(question)}
    absent = set(asked)
    for passage in passages:
        absent &= missing_names(question, passage)
        if not absent:
            break
    return frozenset(asked - absent)
