"""Quality measurement: ``rag eval article|retrieval|answers|all``.

Scoring functions are pure (``scoring``); each benchmark lives in its own
module and returns plain dicts that ``report`` turns into JSON and Markdown.
"""
