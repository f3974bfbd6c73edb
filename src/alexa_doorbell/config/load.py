"""``load_settings``: the settings a command runs with, every mistake one ``ConfigError`` line."""

from __future__ import annotations

import logging
import os

from pydantic import ValidationError
from pydantic_settings.exceptions import SettingsError

from alexa_doorbell import config_errors
from alexa_doorbell.config.settings import (
    CONFIG_VARIABLE,
    DEFAULT_CONFIG_FILE,
    Settings,
    config_file,
)
from alexa_doorbell.lambda_config import LAMBDA_VARIABLES, ConfigError

# ALEXA_DOORBELL_* names that are no Settings field yet no typo either: read by the
# Lambda functions (lambda_config/), beside the settings for secrets that never live in
# the file (web/auth.py, cloud/admin.py), or by the test suite's own knobs (docs/configuration.md).
OTHER_VARIABLES = frozenset(
    {"CONFIG", "DASHBOARD_PASSWORD", "DASHBOARD_PASSWORD_FILE", "DASHBOARD_PASSWORD_ARN"}
    | {"LOCAL_ADMIN_TOKEN"}
    | {"MQTT_USERNAME", "MQTT_PASSWORD", "MQTT_PASSWORD_FILE"}  # inputs/mqtt.py
    | {"WEBHOOK_SECRET", "WEBHOOK_SECRET_FILE"}  # inputs/webhook.py
    | LAMBDA_VARIABLES
    | {"NETEM_OPTIONAL", "RELIABILITY_REPORT", "TOKEN_TRIALS", "SOAK_SESSIONS", "SOAK_BURSTS"}
    | {"LOSSY_SEED"}
)

log = logging.getLogger("alexa_doorbell.config")


def load_settings(**overrides: object) -> Settings:
    """Settings for a command; any mistake is one ConfigError line (the CLI exits 2).

    Beyond ``Settings()``: the file ALEXA_DOORBELL_CONFIG names must exist (``/dev/null``
    means none), and an ``ALEXA_DOORBELL_*`` variable that nothing reads is logged as a
    warning (other tools may share the prefix, so it is not an error).
    """
    environ = dict(os.environ)
    path, named = config_file(environ)
    if named and (not path.exists() or path.is_dir()):
        raise ConfigError(
            f"{CONFIG_VARIABLE}={path}: {'a directory' if path.exists() else 'no such file'}; "
            f"point it at your TOML file, or unset it to read ./{DEFAULT_CONFIG_FILE} if present"
        )
    for warning in config_errors.unknown_variables(environ, Settings.model_fields, OTHER_VARIABLES):
        log.warning("alexa-doorbell: %s", warning)
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        toml = config_errors.read_toml(path) if path.is_file() else {}
        raise ConfigError(
            config_errors.describe_validation_error(
                exc,
                Settings,
                toml=toml,
                toml_path=path.absolute() if path.is_file() else None,
                environ=environ,
            )
        ) from None
    except SettingsError as exc:  # a variable holding JSON that does not parse
        raise ConfigError(config_errors.describe_settings_error(exc, Settings, environ)) from None
