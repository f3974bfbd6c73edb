"""``alexa-doorbell doctor``: check a configuration end to end, changing nothing.

Each check reports ok / warn / FAIL with what it saw and, when something is
wrong, the fix. The same checks run against the local cloud and AWS; where the
two differ (credentials probe, where "camera online" comes from, how the skill
is reached) the check says which it used.

- ``run``: ``Doctor`` (every check, in order) and ``run_doctor`` (the command)
- ``aws``, ``cameras``, ``media``, ``alexa``: the checks, by what they look at
- ``base``: a check's result and what the checks share
"""

from alexa_doorbell.doctor.base import FAIL, OK, SKIP, WARN, Check
from alexa_doorbell.doctor.run import Doctor, run_doctor

__all__ = ["FAIL", "OK", "SKIP", "WARN", "Check", "Doctor", "run_doctor"]
