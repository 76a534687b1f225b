"""The typed core below every part of distilloop: the data that crosses parts, the answer space and the budget.

Nothing here imports another distilloop package but :mod:`distilloop.errors`, so every part (storage,
strategies, students, annotators, the loop, reports, the CLI) can depend on it and on nothing above itself.
"""
