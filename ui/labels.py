"""Every label of the page, in Italian and English.

Answers follow the question's language (the pipeline decides); these are
only the page's own words, switched by the language selector.
"""

from __future__ import annotations

LANGUAGES = {"it": "Italiano", "en": "English"}

LABELS: dict[str, dict[str, str]] = {
    "it": {
        "title": "Assistente notizie",
        "subtitle": (
            "Fai una domanda sugli articoli, in italiano o in inglese: ogni risposta cita i passaggi da cui viene."
        ),
        "chat": "Conversazione",
        "placeholder": "Scrivi una domanda sugli articoli… (Invio per inviare)",
        "question": "Domanda",
        "send": "Invia",
        "new_conversation": "Nuova conversazione",
        "examples": "Esempi di domande (clicca per chiedere)",
        "sources": "Fonti",
        "sources_empty": "Le fonti della risposta più recente appariranno qui, con il passaggio citato evidenziato.",
        "sources_for": "Fonti per",
        "no_citations": "Questa risposta non cita alcun passaggio.",
        "show_in_article": "Mostra nell'articolo",
        "other_passages": "Altri passaggi recuperati ma non citati",
        "relevance": "pertinenza",
        "articles": "Articoli caricati",
        "articles_none": "Nessun articolo caricato: aggiungine uno qui sotto.",
        "articles_more": "…e altri {n} articoli",
        "passage": "passaggio",
        "passages": "passaggi",
        "no_date": "senza data",
        "upload": "Aggiungi un articolo (.txt o .md)",
        "uploading": "Lettura e indicizzazione dell'articolo…",
        "added": "Articolo aggiunto: «{title}» ({date}, {passages}). Ora puoi fare domande su di esso.",
        "unchanged": "«{title}» è già tra gli articoli caricati.",
        "upload_error": "Impossibile aggiungere il file: {error}",
        "upload_nothing": "Nessun file ricevuto.",
        "upload_not_allowed": "Su questa pagina non è permesso aggiungere o rimuovere articoli.",
        "upload_too_much": (
            "Troppi file in una volta: {files} file, {mb} MB (al massimo {max_files} file e {max_mb} MB); "
            "caricali in più volte."
        ),
        "remove": "Rimuovi l'articolo",
        "remove_pick": "Articolo da rimuovere",
        "remove_nothing": "Scegli prima un articolo da rimuovere.",
        "removed": "Articolo rimosso: «{title}».",
        "remove_error": "Impossibile rimuovere l'articolo: {error}",
        "settings": "Impostazioni",
        "backend": "Motore delle risposte",
        "backend_info": (
            "llamacpp: modello integrato · openai: server compatibile "
            "OpenAI · extractive: solo citazioni, senza modello"
        ),
        "k": "Passaggi da recuperare",
        "model_in_use": "Modello in uso",
        "embedding_model": "Modello di ricerca",
        "model_none": "nessun modello linguistico: la risposta cita le frasi più pertinenti",
        "thinking": "Cerco negli articoli…",
        "searched_for": "Cercato",
        "answered_by": "Risposta",
        "fell_back": "ripiego estrattivo",
        "error": "Errore",
        "unexpected_error": (
            "Si è verificato un problema inatteso; riprova. Se si ripete, "
            "scegli il motore «extractive» nelle impostazioni."
        ),
        "new_conversation_done": "Nuova conversazione iniziata.",
    },
    "en": {
        "title": "News assistant",
        "subtitle": (
            "Ask a question about the articles, in Italian or English: every answer cites the passages it comes from."
        ),
        "chat": "Conversation",
        "placeholder": "Type a question about the articles… (Enter to send)",
        "question": "Question",
        "send": "Send",
        "new_conversation": "New conversation",
        "examples": "Example questions (click to ask)",
        "sources": "Sources",
        "sources_empty": "The sources of the latest answer will appear here, with the cited passage highlighted.",
        "sources_for": "Sources for",
        "no_citations": "This answer cites no passage.",
        "show_in_article": "Show in the article",
        "other_passages": "Other passages retrieved but not cited",
        "relevance": "relevance",
        "articles": "Loaded articles",
        "articles_none": "No article loaded yet: add one below.",
        "articles_more": "…and {n} more articles",
        "passage": "passage",
        "passages": "passages",
        "no_date": "no date",
        "upload": "Add an article (.txt or .md)",
        "uploading": "Reading and indexing the article…",
        "added": "Article added: “{title}” ({date}, {passages}). You can ask about it now.",
        "unchanged": "“{title}” is already among the loaded articles.",
        "upload_error": "Could not add the file: {error}",
        "upload_nothing": "No file received.",
        "upload_not_allowed": "Adding or removing articles is not allowed on this page.",
        "upload_too_much": (
            "Too many files at once: {files} files, {mb} MB (at most {max_files} files and {max_mb} MB); "
            "upload them in several goes."
        ),
        "remove": "Remove the article",
        "remove_pick": "Article to remove",
        "remove_nothing": "Pick an article to remove first.",
        "removed": "Article removed: “{title}”.",
        "remove_error": "Could not remove the article: {error}",
        "settings": "Settings",
        "backend": "Answer engine",
        "backend_info": (
            "llamacpp: embedded model · openai: OpenAI-compatible server · extractive: quotes only, no model"
        ),
        "k": "Passages to retrieve",
        "model_in_use": "Model in use",
        "embedding_model": "Search model",
        "model_none": "no language model: the answer quotes the most relevant sentences",
        "thinking": "Searching the articles…",
        "searched_for": "Searched for",
        "answered_by": "Answered by",
        "fell_back": "extractive fallback",
        "error": "Error",
        "unexpected_error": (
            "Something unexpected went wrong; please try again. If it "
            "persists, pick the “extractive” engine in the settings."
        ),
        "new_conversation_done": "New conversation started.",
    },
}

# Shown in both languages whatever the page language: answers follow the question.
EXAMPLES: list[str] = [
    "Chi ha firmato l'accordo di mutua difesa?",
    "Che cosa ha detto Kim di Putin?",
    "Who signed the mutual defence pact?",
    "What do the United States accuse North Korea of?",
]


def count(lang: str, n: int) -> str:
    """ "1 passaggio", "7 passaggi"."""
    return f"{n} {label(lang, 'passage' if n == 1 else 'passages')}"


def label(lang: str, key: str, **values: object) -> str:
    """The label ``key`` in ``lang`` (English if unknown), formatted with ``values``."""
    text = LABELS.get(lang, LABELS["en"])[key]
    return text.format(**values) if values else text
