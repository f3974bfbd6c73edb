"""AWS Lambda entry point of the skill: ``lambda_handler(event, context)``.

Imports only the standard library and the Alexa message modules it needs to
answer an error at load time; the skill itself, boto3 and urllib3 come in when
the skill is first built (once per warm container).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from alexa_doorbell.alexa import errors as E
from alexa_doorbell.alexa.directive import salvage
from alexa_doorbell.alexa.responses import error_response

if TYPE_CHECKING:
    from boto3.session import Session

    from alexa_doorbell.lambda_config import SkillConfig
    from alexa_doorbell.skill.app import Skill
    from alexa_doorbell.store.base import Store

log = logging.getLogger("alexa_doorbell.skill")

_skill: Skill | None = None
_build_lock = threading.Lock()


def build(
    cfg: SkillConfig,
    store: Store | None = None,
    session: Session | None = None,
    *,
    warm: bool = False,
) -> Skill:
    """The skill wired as ``cfg`` says: the store (``store`` when given, with
    ``cfg.cameras`` in its catalog), Login with Amazon and KVS through ``session``
    (default: boto3's for ``cfg.region``). ``warm``: create the KVS client now."""
    from alexa_doorbell.amazon.lwa import LwaClient
    from alexa_doorbell.skill.app import Skill
    from alexa_doorbell.skill.rtc import KvsRelay
    from alexa_doorbell.store import open_store, seed_catalog

    client_id, secret = cfg.lwa_credentials()
    if session is None:
        import boto3

        session = boto3.session.Session(region_name=cfg.region)
    if store is None:
        store = open_store(cfg.store_url)
    seed_catalog(store, cfg.cameras)
    kvs = KvsRelay(session, cfg.kvs_endpoint_url)
    if warm:
        kvs.warm()
    return Skill(
        store,
        LwaClient(cfg.lwa_url, client_id, secret),
        kvs,
        deadline=cfg.deadline,
        single_user=cfg.single_user,
        health_max_age=cfg.health_max_age,
        token_cache_ttl=cfg.token_cache_ttl,
        event_region=cfg.event_region,
    )


def build_from_env(env: Mapping[str, str] | None = None) -> Skill:
    """The skill wired from ``ALEXA_DOORBELL_*`` variables (see lambda_config/)."""
    from alexa_doorbell.lambda_config import SkillConfig

    return build(SkillConfig.from_env(env), warm=True)


def get_skill() -> Skill:
    global _skill
    if _skill is None:
        with _build_lock:
            if _skill is None:
                _skill = build_from_env()
    return _skill


def lambda_handler(event: Any, context: Any = None) -> dict[str, Any]:
    try:
        skill = get_skill()
    except Exception as exc:  # configuration trouble: answer, and try again next time
        log.error("skill not ready: %s", exc)
        corr, endpoint_id = salvage(event)
        return error_response(
            E.INTERNAL_ERROR,
            f"skill not ready: {exc}"[:1000],
            correlation_token=corr,
            endpoint_id=endpoint_id,
        )
    return skill.handle(event)


if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):  # in Lambda: INFO logs to CloudWatch
    logging.getLogger("alexa_doorbell").setLevel(logging.INFO)
