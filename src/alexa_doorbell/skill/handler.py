"""AWS Lambda entry point of the skill: ``lambda_handler(event, context)``.

Imports only the standard library and our pure modules at load time; boto3
and urllib3 come in when the skill is first built (once per warm container).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from alexa_doorbell.alexa import errors as E
from alexa_doorbell.alexa.directive import salvage
from alexa_doorbell.alexa.responses import error_response
from alexa_doorbell.skill.app import Skill

log = logging.getLogger("alexa_doorbell.skill")

_skill: Skill | None = None
_build_lock = threading.Lock()


def build_from_env(env: dict[str, str] | None = None) -> Skill:
    """The skill wired from ``ALEXA_DOORBELL_*`` variables (see skill/config.py)."""
    import boto3

    from alexa_doorbell.amazon.lwa import LwaClient
    from alexa_doorbell.skill.config import SkillConfig
    from alexa_doorbell.skill.rtc import KvsRelay
    from alexa_doorbell.store import open_store, seed_catalog

    cfg = SkillConfig.from_env(env)
    client_id, secret = cfg.lwa_credentials()
    store = open_store(cfg.store_url)
    seed_catalog(store, cfg.cameras)
    kvs = KvsRelay(boto3.session.Session(region_name=cfg.region), cfg.kvs_endpoint_url)
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
