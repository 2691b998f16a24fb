"""What comes in from outside the commune without a person typing it: news feeds (feeds.py, articles.py)
and official alerts (cap.py). A face like `cli/` and `api/`: it fetches and reads what a source publishes,
and hands the result to `broadcaster/services/`, which decide what becomes of it (a draft awaiting
approval; an official alert that the commune's `[alerts] rules` say airs at once), store it and audit it.
Nothing here decides what airs.
"""
