"""The skill Lambda: one Alexa directive in, one response out (``handler.lambda_handler``).

``notify.py`` only keeps the notifier handler path earlier stacks were deployed
with; the notifier lives in ``alexa_doorbell.notifier``.
"""
