"""What the camera side needs before it starts with ``cloud = "aws"``.

The camera agent, ``press`` and ``tokens status`` reach Alexa in AWS only through the
notifier Lambda, signed with the camera's own AWS credentials. Without either they would
start and then fail in a way the user cannot see: heartbeats that never reach the table
(every live view ``ENDPOINT_UNREACHABLE``), presses that reach nobody. So they refuse to
start, with one line saying what to set (the CLI prints it and exits 2).

Nothing here touches the network: the credentials are looked up along botocore's chain
without its EC2 instance-metadata step (a camera at home has no instance role, and that
step is an HTTP call that waits for a timeout off EC2).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from alexa_doorbell.lambda_config import ConfigError

if TYPE_CHECKING:
    from alexa_doorbell.config import Settings

# botocore's name for the EC2 instance-metadata provider (a network call).
_INSTANCE_METADATA = "iam-role"


def credential_method(profile: str | None = None) -> str | None:
    """Where botocore's chain finds credentials (``env``, ``shared-credentials-file``...).

    None when nothing along the chain (instance metadata aside) has any. Raises
    ConfigError for a named profile that does not exist or an unreadable AWS config.
    """
    import botocore.exceptions
    import botocore.session

    profile = profile or os.environ.get("AWS_PROFILE") or os.environ.get("AWS_DEFAULT_PROFILE")
    try:
        session = botocore.session.Session(profile=profile or None)
        resolver = session.get_component("credential_provider")
        resolver.remove(_INSTANCE_METADATA)  # silently nothing when absent
        credentials = resolver.load_credentials()
    except botocore.exceptions.ProfileNotFound:
        raise ConfigError(
            f"AWS_PROFILE={profile}: no such profile in ~/.aws/config or ~/.aws/credentials; "
            f"create it with `aws configure --profile {profile}` (the camera's access key)"
        ) from None
    except botocore.exceptions.BotoCoreError as exc:
        raise ConfigError(f"cannot read the AWS credentials: {exc}") from None
    return None if credentials is None else str(getattr(credentials, "method", "") or "found")


def require_camera_side(settings: Settings, what: str = "the camera agent") -> None:
    """ConfigError (one line: what to set) unless ``what`` can reach Alexa in AWS."""
    if settings.is_local:
        return
    if not settings.notifier_function:
        raise ConfigError(
            f'cloud = "aws": {what} needs notifier_function, the stack output '
            'NotifierFunctionArn (notifier_function = "arn:aws:lambda:..." in '
            "alexa-doorbell.toml, or ALEXA_DOORBELL_NOTIFIER_FUNCTION); without it Alexa never "
            "hears from this camera (docs/deploy-aws.md, step 7)"
        )
    if credential_method() is None:
        raise ConfigError(
            f'cloud = "aws": {what} found no AWS credentials: run `aws configure --profile '
            "doorbell-camera` with the access key of the camera's IAM user (policy "
            "CameraAgentPolicy) and set AWS_PROFILE=doorbell-camera (docs/deploy-aws.md, step 7)"
        )
