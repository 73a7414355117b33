"""Search terms of English and Korean text, for the BM25 index and its queries alike.

Korean attaches particles and endings to words ("고양이가", "고양이와"), so a
whitespace tokenizer never matches "고양이" in them. Hangul is therefore analysed by
Kiwi and only its content morphemes are kept: nouns, numerals, roots and the stems of
verbs and adjectives ("빨간" → "빨갛"). Particles, endings, copulas and suffixes
("-들", "-형") are dropped. Everything that is not Hangul (English words, numbers,
Hanja) passes through verbatim, so the index still lower-cases and stems English itself.
Documents and queries go through the same function, which is what makes them meet.
"""

from __future__ import annotations

import re
import threading

from kiwipiepy import Kiwi

# Kiwi tags of content morphemes; irregular stems carry a suffix ("VA-I"), compared without it.
CONTENT_TAGS = frozenset({"NNG", "NNP", "NNB", "NR", "XR", "VV", "VA"})
_HANGUL = "\u1100-\u11ff\u3130-\u318f\uac00-\ud7a3"
_HAS_HANGUL = re.compile(f"[{_HANGUL}]")
_OTHER_WORD = re.compile(rf"[^\s{_HANGUL}]*[^\W{_HANGUL}][^\s{_HANGUL}]*")

_kiwi: Kiwi | None = None
_kiwi_lock = threading.Lock()


def analyser() -> Kiwi:
    """The one Kiwi of the process, built on first use (~3 s); its analysis is safe from several threads."""
    global _kiwi
    with _kiwi_lock:
        if _kiwi is None:
            # Analysis of one text runs in the calling thread; one worker is the fewest Kiwi accepts.
            # The typo and multi-word-entity dictionaries cost ~190 MB and matter little for
            # captions and labels; documents and queries are read the same way either way.
            _kiwi = Kiwi(num_workers=1, load_typo_dict=False, load_multi_dict=False)
        return _kiwi


def has_hangul(text: str) -> bool:
    """Whether ``text`` contains Korean script."""
    return _HAS_HANGUL.search(text) is not None


def search_terms(text: str) -> list[str]:
    """The terms of ``text`` in reading order: Korean content morphemes and every non-Hangul word as written.

    Kiwi reads a morpheme in the light of its neighbours, so a list of short items (tags,
    keywords) is best analysed item by item, as a query of one of them would be.
    """
    terms = [(match.start(), match.group()) for match in _OTHER_WORD.finditer(text)]
    if has_hangul(text):
        # No special patterns (hashtags, URLs): "#보라색별" should yield its nouns.
        terms += [
            (morpheme.start, morpheme.form)
            for morpheme in analyser().tokenize(text, match_options=0)
            if morpheme.tag.split("-")[0] in CONTENT_TAGS and has_hangul(morpheme.form)
        ]
    return [term for _, term in sorted(terms, key=lambda pair: pair[0])]
