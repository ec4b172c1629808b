"""Names in a sentence (people, places, organisations, months), matched across Italian and English.

The citation check uses this to refuse a sentence that names someone or
something its cited sentence does not: "Mario Draghi ha firmato l'accordo"
cited to "Putin ha firmato un accordo…" shares most of its words, but not the
one that matters. A name is a capitalised word (or an acronym) that is not a
function word; the first word of a sentence counts unless it is a common
opening word. Names match when equal after folding accents and case, when one
is a prefix of the other beyond a few letters ("Russia"/"russi", "Europa"/"European"),
or through a short table of English/Italian exonyms ("North Korea"/"Corea del Nord").
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
# English -> Italian, folded: words of names that differ between the two languages.
_EXONYMS = {
    "north": "nord", "south": "sud", "east": "est", "west": "ovest", "korea": "corea", "korean": "coreano",
    "koreans": "coreani", "united": "uniti", "states": "stati", "ukraine": "ucraina", "ukrainian": "ucraino",
    "moscow": "mosca", "russian": "russo", "russians": "russi", "america": "america", "american": "americano",
    "europe": "europa", "european": "europeo", "union": "unione", "italy": "italia", "italian": "italiano",
    "germany": "germania", "german": "tedesco", "france": "francia", "french": "francese", "spain": "spagna",
    "china": "cina", "chinese": "cinese", "japan": "giappone", "japanese": "giapponese", "britain": "bretagna",
    "british": "britannico", "london": "londra", "rome": "roma", "milan": "milano", "turin": "torino",
    "naples": "napoli", "florence": "firenze", "venice": "venezia", "genoa": "genova", "sicily": "sicilia",
    "sardinia": "sardegna", "lombardy": "lombardia", "tuscany": "toscana", "piedmont": "piemonte",
    "vatican": "vaticano", "pope": "papa", "kingdom": "regno", "square": "piazza", "iran": "iran",
    "syria": "siria", "turkey": "turchia", "egypt": "egitto", "greece": "grecia", "switzerland": "svizzera",
    "austria": "austria", "poland": "polonia", "belarus": "bielorussia", "crimea": "crimea", "nato": "nato",
    "un": "onu", "eu": "ue", "usa": "uniti", "us": "uniti", "kremlin": "cremlino", "white": "bianca",
    "house": "casa", "senate": "senato", "parliament": "parlamento", "government": "governo",
    "january": "gennaio", "february": "febbraio", "march": "marzo", "april": "aprile", "may": "maggio",
    "june": "giugno", "july": "luglio", "august": "agosto", "september": "settembre", "october": "ottobre",
    "november": "novembre", "december": "dicembre", "monday": "lunedi", "tuesday": "martedi",
    "wednesday": "mercoledi", "thursday": "giovedi", "friday": "venerdi", "saturday": "sabato",
    "sunday": "domenica",
}
_SHARED_PREFIX = 5


@lru_cache(maxsize=65536)
def _fold(word: str) -> str:
    folded = unicodedata.normalize("NFKD", word.lower().replace("’", "'"))
    return "".join(c for c in folded if not unicodedata.combining(c))


def _canonical(word: str) -> str:
    folded = _fold(word)
    return _EXONYMS.get(folded, folded)


def names(text: str) -> set[str]:
    """The folded, exonym-mapped names of ``text`` (each word of a multi-word name)."""
    found: set[str] = set()
    for i, m in enumerate(_WORD.finditer(text)):
        word = m.group()
        for part in re.split(r"['’-]", word):
            if len(part) < 2 or not part[0].isupper() or _fold(part) in _OPENERS:
                continue
            if i == 0 and part == word and _fold(part) in _OPENERS:
                continue
            found.add(_canonical(part))
    return found


def _words(text: str) -> set[str]:
    return {_canonical(p) for w in _WORD.findall(text) for p in re.split(r"['’-]", w) if p}


def _same(name: str, word: str) -> bool:
    """Equal, or one the other's inflection: a prefix beyond a few letters, or the same stem."""
    if name == word:
        return True
    if min(len(name), len(word)) < _SHARED_PREFIX:
        return False
    return name.startswith(word) or word.startswith(name) or name[: _SHARED_PREFIX + 1] == word[: _SHARED_PREFIX + 1]


def missing_names(claim: str, sentence: str) -> set[str]:
    """Names of ``claim`` that ``sentence`` does not contain."""
    have = _words(sentence)
    return {name for name in names(claim) if not any(_same(name, w) for w in have)}
