"""KVS signaling channel names as AWS accepts them (botocore's ``ChannelName`` shape).

Always used with ``.fullmatch``: AWS matches the whole value, so ``"front-door\\n"`` is
no channel name. Shared by the settings (a camera's ``channel_name``) and the local cloud.
"""

from __future__ import annotations

import re

CHANNEL_NAME_RE = re.compile(r"[a-zA-Z0-9_.\-]{1,256}")
