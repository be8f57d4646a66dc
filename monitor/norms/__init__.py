"""Route norms: how long each phase of a journey usually takes on a route, learned from the store's own history.

``learn.py`` aggregates finished parcels in SQL into the ``route_norm`` table; ``model.py``
holds the table in memory and answers with the fallback chain (route → region class →
carrier → preset); ``estimate.py`` turns a norm into an estimated delivery window.
"""
