"""``alexa-doorbell demo``: the whole system on one machine, watched by a simulated Echo Show.

It starts the local cloud, the skill (invoked as Alexa invokes a Lambda: JSON
in, JSON out), a camera agent in its own process and a simulated Echo Show,
then plays the user's story one step at a time: link the skill, discover,
live view, talk, session events, the talk modes ("show me" and "talk to" a
full-duplex, a half-duplex and a no-talk camera, :mod:`alexa_doorbell.demo.talk`),
a doorbell press that opens the live view, and the camera going offline. Each
step either passes with its figures or names what was expected and what was seen.

- ``run``: ``run_demo``, the command's entry: a throwaway cloud, the story, the summary
- ``story``: the steps, in the order a user lives them
- ``talk``: the talk-modes step's three extra cameras
- ``steps``, ``report``: a step's result, and how the demo prints it
"""

from alexa_doorbell.demo.run import run_demo
from alexa_doorbell.demo.steps import SILENCE_RMS, wav_stats

__all__ = ["SILENCE_RMS", "run_demo", "wav_stats"]
