"""The Alexa Smart Home v3 message format: parse directives, build responses, events and errors.

Pure: no I/O.
"""
