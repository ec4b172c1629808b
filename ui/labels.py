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
        "chat_placeholder": "Le risposte appariranno qui, ciascuna con i passaggi che cita.",
        "placeholder": "Scrivi una domanda sugli articoli… (Invio per inviare)",
        "question": "Domanda",
        "send": "Invia",
        "new_conversation": "Nuova conversazione",
        "examples": "Esempi di domande (clicca per chiedere)",
        "sources": "Fonti",
        "show_in_article": "Mostra nell'articolo",
        "other_passages": "Altri passaggi recuperati ma non citati",
        "relevance": "pertinenza",
        "articles": "Articoli caricati",
        "articles_none": "Nessun articolo caricato: aggiungine uno qui sotto.",
        "articles_more": "…e altri {n} articoli",
        "passage": "passaggio",
        "passages": "passaggi",
        "no_date": "senza data",
        "upload": "Aggiungi articoli (.txt o .md)",
        "uploading": "Lettura e indicizzazione dell'articolo…",
        "added": "Articolo aggiunto: «{title}» ({date}, {passages}). Ora puoi fare domande su di esso.",
        "unchanged": "«{title}» è già tra gli articoli caricati.",
        "upload_error": "File non aggiunto: {error}",
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
        "searched_for": "Cercato",
        "answered_by": "Risposta",
        "error": "Errore",
        "unexpected_error": (
            "Si è verificato un problema inatteso; riprova. Se si ripete, "
            "scegli il motore «extractive» nelle impostazioni."
        ),
        "stop": "Ferma",
        "regenerate": "Rigenera la risposta",
        "edit_last": "Modifica l'ultima domanda",
        "stopped": "Risposta interrotta: la domanda resta nella conversazione.",
        "details": "Dettagli",
        "translated_query": "Cercato anche in traduzione",
        "refusal_reason": "Motivo del rifiuto",
        "fallback_reason": "Motivo del ripiego",
        "note": "Nota",
        "timings": "Tempi",
        "fell_back_note": (
            "Il modello linguistico non era disponibile o la sua risposta non era valida: "
            "la risposta cita le frasi più pertinenti."
        ),
        "stage_loading": "Preparo l'indice e il modello…",
        "stage_rewriting": "Leggo la conversazione…",
        "stage_searching": "Cerco negli articoli…",
        "stage_translating": "Traduco la domanda per cercare nella lingua degli articoli…",
        "stage_reading": "Leggo {passages}…",
        "stage_writing": "Scrivo la risposta…",
        "stage_checking": "Controllo le citazioni…",
        "nothing_to_regenerate": "Non c'è ancora una risposta da rigenerare.",
        "edit_box_busy": "La casella contiene già un testo: invialo o cancellalo, poi modifica l'ultima domanda.",
        "err_question_not_text": "La domanda deve essere un testo.",
        "err_question_empty": "La domanda è vuota: scrivi una domanda sugli articoli.",
        "err_question_too_long": (
            "La domanda è lunga {chars} caratteri; il limite è {limit}. Accorciala: il testo è rimasto nella casella."
        ),
        "err_utf16": "«{name}» è salvato in UTF-16: salvalo in UTF-8 e riprova.",
        "err_binary": "«{name}» sembra un file binario, non un articolo di testo.",
        "err_not_utf8": "«{name}» non è un testo UTF-8 valido: salvalo in UTF-8 e riprova.",
        "err_empty": "«{name}» è vuoto.",
        "err_title_too_long": "Il titolo di «{name}» è lungo {chars} caratteri; il limite è {limit}.",
        "err_title_only": "«{name}» ha una riga di titolo ma nessun testo dopo.",
        "err_unreadable": "«{name}» non può essere letto.",
        "err_unsupported_type": (
            "«{name}»: tipo di file {suffix} non supportato; usa testo semplice o Markdown (.txt, .md)."
        ),
        "err_too_big": "«{name}» pesa {kb} KB; il limite è {limit_kb} KB.",
        "err_instructions": (
            "«{name}» è stato rifiutato: contiene istruzioni rivolte all'assistente («{excerpt}…»). "
            "Gli articoli sono letti come dati, mai come istruzioni."
        ),
        "err_too_many_passages": (
            "«{name}» darebbe {passages} passaggi; il limite è {limit}. Dividilo in più articoli."
        ),
        "err_cannot_store": "«{name}» non può essere salvato tra gli articoli (spazio o permessi).",
        "err_generic": "Non è stato possibile completare la richiesta.",
    },
    "en": {
        "title": "News assistant",
        "subtitle": (
            "Ask a question about the articles, in Italian or English: every answer cites the passages it comes from."
        ),
        "chat": "Conversation",
        "chat_placeholder": "Answers will appear here, each with the passages it cites.",
        "placeholder": "Type a question about the articles… (Enter to send)",
        "question": "Question",
        "send": "Send",
        "new_conversation": "New conversation",
        "examples": "Example questions (click to ask)",
        "sources": "Sources",
        "show_in_article": "Show in the article",
        "other_passages": "Other passages retrieved but not cited",
        "relevance": "relevance",
        "articles": "Loaded articles",
        "articles_none": "No article loaded yet: add one below.",
        "articles_more": "…and {n} more articles",
        "passage": "passage",
        "passages": "passages",
        "no_date": "no date",
        "upload": "Add articles (.txt or .md)",
        "uploading": "Reading and indexing the article…",
        "added": "Article added: “{title}” ({date}, {passages}). You can ask about it now.",
        "unchanged": "“{title}” is already among the loaded articles.",
        "upload_error": "File not added: {error}",
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
        "searched_for": "Searched for",
        "answered_by": "Answered by",
        "error": "Error",
        "unexpected_error": (
            "Something unexpected went wrong; please try again. If it "
            "persists, pick the “extractive” engine in the settings."
        ),
        "stop": "Stop",
        "regenerate": "Regenerate the answer",
        "edit_last": "Edit the last question",
        "stopped": "Answer stopped: the question stays in the conversation.",
        "details": "Details",
        "translated_query": "Also searched in translation",
        "refusal_reason": "Why it was refused",
        "fallback_reason": "Why it fell back",
        "note": "Note",
        "timings": "Timings",
        "fell_back_note": (
            "The language model was unavailable or its answer failed validation: "
            "the answer quotes the most relevant sentences."
        ),
        "stage_loading": "Loading the index and the model…",
        "stage_rewriting": "Reading the conversation…",
        "stage_searching": "Searching the articles…",
        "stage_translating": "Translating the question to search in the articles' language…",
        "stage_reading": "Reading {passages}…",
        "stage_writing": "Writing the answer…",
        "stage_checking": "Checking the citations…",
        "nothing_to_regenerate": "There is no answer to regenerate yet.",
        "edit_box_busy": "The box already holds some text: send or clear it, then edit the last question.",
        "err_question_not_text": "The question must be text.",
        "err_question_empty": "The question is empty: type a question about the articles.",
        "err_question_too_long": (
            "The question is {chars} characters long; the limit is {limit}. Please shorten it: "
            "the text is still in the box."
        ),
        "err_utf16": "“{name}” is saved as UTF-16: save it as UTF-8 and try again.",
        "err_binary": "“{name}” looks like a binary file, not a text article.",
        "err_not_utf8": "“{name}” is not valid UTF-8 text: save it as UTF-8 and try again.",
        "err_empty": "“{name}” is empty.",
        "err_title_too_long": "The title of “{name}” is {chars} characters long; the limit is {limit}.",
        "err_title_only": "“{name}” has a title line but no text after it.",
        "err_unreadable": "“{name}” cannot be read.",
        "err_unsupported_type": "“{name}”: unsupported file type {suffix}; use plain text or Markdown (.txt, .md).",
        "err_too_big": "“{name}” is {kb} KB; the limit is {limit_kb} KB.",
        "err_instructions": (
            "“{name}” was refused: it holds instructions addressed to the assistant (“{excerpt}…”). "
            "Articles are read as data, never as instructions."
        ),
        "err_too_many_passages": (
            "“{name}” would make {passages} passages; the limit is {limit}. Split it into several articles."
        ),
        "err_cannot_store": "“{name}” could not be saved among the articles (disk space or permissions).",
        "err_generic": "The request could not be completed.",
    },
}

# Shown in both languages whatever the page language: answers follow the question.
EXAMPLES: list[str] = [
    "Chi ha firmato l'accordo di mutua difesa?",
    "Che cosa ha detto Kim di Putin?",
    "Who signed the mutual defence pact?",
    "What do the United States accuse North Korea of?",
]


def number(lang: str, n: int) -> str:
    """``n`` with the language's thousands separator: "1.134" in Italian, "1,134" in English."""
    return f"{n:,}".replace(",", "." if lang == "it" else ",")


def count(lang: str, n: int) -> str:
    """ "1 passaggio", "7 passaggi"."""
    return f"{n} {label(lang, 'passage' if n == 1 else 'passages')}"


def label(lang: str, key: str, **values: object) -> str:
    """The label ``key`` in ``lang`` (English if unknown), formatted with ``values``."""
    text = LABELS.get(lang, LABELS["en"])[key]
    return text.format(**values) if values else text


def error_text(err: BaseException, lang: str) -> tuple[str, str | None]:
    """What to tell the reader about ``err`` in ``lang``, and the English details (None when
    the message says it all): errors a person can fix have their own wording, others a
    general sentence with the technical message kept for the details toggle."""
    code = getattr(err, "code", None)
    key = f"err_{code}"
    if code and key in LABELS.get(lang, LABELS["en"]):
        params = {k: number(lang, v) if isinstance(v, int) else v for k, v in getattr(err, "params", {}).items()}
        return label(lang, key, **params), None
    return label(lang, "err_generic"), str(err) or type(err).__name__
