"""The Gradio chat page over :class:`rag.Assistant` (``rag ui``, ``make run``).

``ui.app.build_app(assistant)`` builds the page; ``ui.app.launch(assistant)``
serves it. Gradio is imported only by ``ui.app`` and ``ui.chat``, so the pure
rendering helpers (``ui.render``, ``ui.labels``) load without it.
"""
