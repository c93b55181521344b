"""Dead letters of Celery, RQ and Dramatiq, handled here and re-driven back to them.

Each host module (celery.py, rq.py, dramatiq.py) imports its host library, which is an
optional extra (`pip install deadletter[celery]`); this package and `core` need none.
Nothing in deadletter imports this package: it depends on the app, never the reverse.
"""
