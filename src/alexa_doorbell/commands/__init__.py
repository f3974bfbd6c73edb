"""The commands' own wiring, above the layers it joins (``cli.py`` is the entry point).

``skill``: the skill built from the settings and ``alexa-doorbell skill invoke``
(which starts a local cloud when none runs); ``press``: ``alexa-doorbell press``
and ``tokens status`` through the notifier.
"""
