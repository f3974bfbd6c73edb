"""Settings for the tools that run outside Lambda (CLI, camera agent, local cloud).

Sources, highest first: environment variables prefixed ``ALEXA_DOORBELL_``
(nested with ``__``, e.g. ``ALEXA_DOORBELL_LOCAL__PORT``), then the TOML file
named by ``ALEXA_DOORBELL_CONFIG`` (default ``alexa-doorbell.toml`` in the
working directory, when present), then the defaults below. Unknown keys are
errors at every level, and ``load_settings`` turns every mistake (malformed
TOML, a bad value, a misspelt key, a named file that is missing) into one
``ConfigError`` line that names the file or variable, the key and what is allowed.

The defaults are the embedded local cloud: no account needed. Set
``cloud = "aws"`` to use AWS KVS, Login with Amazon and the Alexa event gateway;
AWS credentials then come from the standard AWS chain and the LWA client
secret from the environment or AWS Secrets Manager, never from this file.

The Lambda path does not import this module (pydantic is not in the Lambda
runtime); it reads the same ``ALEXA_DOORBELL_`` variables with the stdlib in
``alexa_doorbell.lambda_config``, where the defaults both share live.
``Settings.lambda_config()`` turns these settings into that module's
``SkillConfig``, from which the skill and the notifier are built.

- ``settings``: ``Settings`` and the TOML file it reads
- ``camera``, ``tables``: ``[[cameras]]``, and ``[local]``, ``[dashboard]``, ``[webhook]``
- ``load``: ``load_settings``, for the commands
- ``urls``: the URL forms settings take (STUN, MQTT)
"""

from alexa_doorbell.config.camera import CameraConfig
from alexa_doorbell.config.load import OTHER_VARIABLES, load_settings
from alexa_doorbell.config.settings import (
    CONFIG_VARIABLE,
    DEFAULT_CONFIG_FILE,
    ENV_PREFIX,
    EVENT_GATEWAYS,
    Settings,
    config_file,
    device_of,
)
from alexa_doorbell.config.tables import (
    LOCAL_AWS_ACCESS_KEY_ID,
    LOCAL_AWS_SECRET_ACCESS_KEY,
    DashboardConfig,
    LocalCloudConfig,
    WebhookConfig,
)
from alexa_doorbell.lambda_config import (
    LOCAL_LWA_CLIENT_ID,
    LOCAL_LWA_CLIENT_SECRET,
    LWA_URL,
    ConfigError,
    SkillConfig,
)

__all__ = [
    "CONFIG_VARIABLE",
    "DEFAULT_CONFIG_FILE",
    "ENV_PREFIX",
    "EVENT_GATEWAYS",
    "LOCAL_AWS_ACCESS_KEY_ID",
    "LOCAL_AWS_SECRET_ACCESS_KEY",
    "LOCAL_LWA_CLIENT_ID",
    "LOCAL_LWA_CLIENT_SECRET",
    "LWA_URL",
    "OTHER_VARIABLES",
    "CameraConfig",
    "ConfigError",
    "DashboardConfig",
    "LocalCloudConfig",
    "Settings",
    "SkillConfig",
    "WebhookConfig",
    "config_file",
    "device_of",
    "load_settings",
]
