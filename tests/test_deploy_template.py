"""The AWS deployment files: SAM template (cfn-lint + house rules), IAM, skill manifest."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from cfnlint import api as cfnlint_api
from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
TEMPLATE = DEPLOY / "template.yaml"
# Alexa sends smart-home directives to a Lambda in one of these (NA, EU, FE).
ALEXA_REGIONS = ["us-east-1", "eu-west-1", "us-west-2"]


def _lint(text: str) -> list[str]:
    matches = cfnlint_api.lint(text, config=cfnlint_api.ManualArgs(regions=ALEXA_REGIONS))
    return [f"{m.rule.id} {m.message} (line {m.linenumber})" for m in matches]


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return cfn_yaml.load(str(TEMPLATE))


def _resources(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == type_}


def _statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for policy in role["Properties"]["Policies"]:
        out.extend(policy["PolicyDocument"]["Statement"])
    return out


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def test_cfn_lint_passes() -> None:
    assert _lint(TEMPLATE.read_text()) == []


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("Runtime: python3.12", "Runtime: python2.7"),  # deprecated runtime
        ("Resource: !GetAtt StoreTable.Arn", "Resource: !GetAtt StoreTabel.Arn"),  # bad ref
        ("BillingMode: PAY_PER_REQUEST", "BillingMode: ON_DEMAND"),  # invalid value
        ("SSEAlgorithm: AES256", "SSEAlgorithm: AES128"),  # no such encryption
        ("!GetAtt SnapshotBucket.Arn", "!GetAtt SnapshotBucket.Name"),  # no such attribute
    ],
)
def test_cfn_lint_catches_breakage(old: str, new: str) -> None:
    text = TEMPLATE.read_text()
    assert old in text
    assert _lint(text.replace(old, new, 1)), f"cfn-lint accepted {new!r}"


def test_functions_runtime_arch_handlers(template: dict[str, Any]) -> None:
    functions = _resources(template, "AWS::Serverless::Function")
    globals_ = template["Globals"]["Function"]
    assert globals_["Runtime"] == "python3.12"
    assert globals_["Architectures"] == ["arm64"]
    # CodeUri is the zip `alexa-doorbell package-lambda` writes by default.
    assert (TEMPLATE.parent / globals_["CodeUri"]).resolve() == ROOT / "dist" / "lambda.zip"
    handlers = {name: f["Properties"]["Handler"] for name, f in functions.items()}
    assert handlers == {
        "SkillFunction": "alexa_doorbell.skill.handler.lambda_handler",
        "NotifierFunction": "alexa_doorbell.notifier.lambda_handler.lambda_handler",
    }
    assert functions["SkillFunction"]["Properties"]["Timeout"] == 6
    for handler in handlers.values():
        module = handler.rsplit(".", 1)[0]
        path = ROOT / "src" / (module.replace(".", "/") + ".py")
        assert re.search(r"^def lambda_handler\(", path.read_text(), re.M), handler


def test_skill_trigger_is_restricted_to_the_skill(template: dict[str, Any]) -> None:
    perms = _resources(template, "AWS::Lambda::Permission")
    assert len(perms) == 1
    props = next(iter(perms.values()))["Properties"]
    assert props["Principal"] == "alexa-connectedhome.amazon.com"
    assert props["EventSourceToken"] == {"Ref": "SkillId"}
    assert props["FunctionName"] == {"Fn::GetAtt": ["SkillFunction", "Arn"]}


def test_table_on_demand_with_recovery(template: dict[str, Any]) -> None:
    (table,) = _resources(template, "AWS::DynamoDB::Table").values()
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["DeletionPolicy"] == "Retain"
    # The key schema the DynamoDB store expects.
    from alexa_doorbell.store import dynamodb

    keys = {k["AttributeName"]: k["KeyType"] for k in props["KeySchema"]}
    assert keys == {dynamodb.PK: "HASH", dynamodb.SK: "RANGE"}
    assert props["TimeToLiveSpecification"]["AttributeName"] == dynamodb.TTL


def test_one_signaling_channel_per_camera(template: dict[str, Any]) -> None:
    channels = _resources(template, "AWS::KinesisVideo::SignalingChannel")
    assert sorted(channels) == [f"Camera{i}Channel" for i in range(1, 5)]
    for i, (name, ch) in enumerate(sorted(channels.items()), start=1):
        assert ch["Properties"]["Name"] == {"Ref": f"Camera{i}ChannelName"}
        assert ch["Properties"]["Type"] == "SINGLE_MASTER"
        assert ("Condition" in ch) == (i > 1), name  # camera 1 always, the rest optional
        assert f"Camera{i}ChannelArn" in template["Outputs"]


def test_lwa_secret_is_referenced_never_inlined(template: dict[str, Any]) -> None:
    params = template["Parameters"]
    secretish = [p for p in params if "secret" in p.lower()]
    assert secretish == ["LwaClientSecretArn"]
    assert "secretsmanager" in params["LwaClientSecretArn"]["AllowedPattern"]
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert env["ALEXA_DOORBELL_LWA_CLIENT_SECRET_ARN"] == {"Ref": "LwaClientSecretArn"}
    assert "ALEXA_DOORBELL_LWA_CLIENT_SECRET" not in env
    assert not _resources(template, "AWS::SecretsManager::Secret")


SKILL_ACTIONS = {
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "kinesisvideo:DescribeSignalingChannel",
    "kinesisvideo:GetSignalingChannelEndpoint",
    "kinesisvideo:SendAlexaOfferToMaster",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:Query",
    "secretsmanager:GetSecretValue",
}


@pytest.mark.parametrize("role", ["SkillRole", "NotifierRole"])
def test_least_privilege_roles(template: dict[str, Any], role: str) -> None:
    statements = _statements(template["Resources"][role])
    actions = {a for s in statements for a in _actions(s)}
    assert actions <= SKILL_ACTIONS
    if role == "NotifierRole":
        assert not any(a.startswith("kinesisvideo:") for a in actions)
    for s in statements:
        assert s["Effect"] == "Allow"
        assert all("*" not in a for a in _actions(s)), s
        assert s["Resource"] != "*", s
        text = json.dumps(s["Resource"])
        if any(a.startswith("kinesisvideo:") for a in _actions(s)):
            # Channels by name only, never every channel of the account.
            assert "channel/${Camera1ChannelName}/*" in text
            assert "channel/*" not in text
        if any(a.startswith("dynamodb:") for a in _actions(s)):
            assert s["Resource"] == {"Fn::GetAtt": ["StoreTable", "Arn"]}
    # Each function runs with its own role.
    fn = "SkillFunction" if role == "SkillRole" else "NotifierFunction"
    assert template["Resources"][fn]["Properties"]["Role"] == {"Fn::GetAtt": [role, "Arn"]}


def test_camera_agent_policy_file_matches_template(template: dict[str, Any]) -> None:
    doc = json.loads((DEPLOY / "camera-agent-policy.json").read_text())
    in_template = template["Resources"]["CameraAgentPolicy"]["Properties"]["PolicyDocument"]

    def by_sid(d: dict[str, Any]) -> dict[str, set[str]]:
        return {s["Sid"]: set(_actions(s)) for s in d["Statement"]}

    assert by_sid(doc) == by_sid(in_template)
    assert by_sid(doc)["SignalingAsMaster"] == {
        "kinesisvideo:ConnectAsMaster",
        "kinesisvideo:GetSignalingChannelEndpoint",
        "kinesisvideo:GetIceServerConfig",
        "kinesisvideo:DescribeSignalingChannel",
    }
    assert by_sid(doc)["RingTheDoorbell"] == {"lambda:InvokeFunction"}
    assert by_sid(doc)["Snapshots"] == {"s3:PutObject", "s3:GetObject"}
    assert all(s["Resource"] != "*" for s in doc["Statement"])
    (snapshots,) = [s for s in doc["Statement"] if s["Sid"] == "Snapshots"]
    assert snapshots["Resource"] == "arn:aws:s3:::SNAPSHOT_BUCKET/snapshots/*"


def test_snapshot_bucket_is_private_encrypted_and_expires(template: dict[str, Any]) -> None:
    from alexa_doorbell.cloud.s3 import LIFECYCLE_DAYS

    (name,) = _resources(template, "AWS::S3::Bucket")
    props = template["Resources"][name]["Properties"]
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    (expiry,) = props["LifecycleConfiguration"]["Rules"]
    assert expiry["Status"] == "Enabled"
    assert expiry["ExpirationInDays"] == 30 == LIFECYCLE_DAYS  # the local cloud does the same
    assert not {"Prefix", "TagFilters", "ObjectSizeGreaterThan"} & set(expiry)  # every object
    (policy,) = _resources(template, "AWS::S3::BucketPolicy").values()
    assert policy["Properties"]["Bucket"] == {"Ref": name}
    (deny,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", "*", "s3:*")
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny["Resource"] == [
        {"Fn::GetAtt": [name, "Arn"]},
        {"Fn::Sub": "${SnapshotBucket.Arn}/*"},
    ]
    assert template["Outputs"]["SnapshotBucketName"]["Value"] == {"Ref": name}


def test_camera_agent_puts_snapshots_under_its_prefix_only(template: dict[str, Any]) -> None:
    from alexa_doorbell.amazon.snapshots import PREFIX

    doc = template["Resources"]["CameraAgentPolicy"]["Properties"]["PolicyDocument"]
    s3_statements = [s for s in doc["Statement"] if any(a.startswith("s3:") for a in _actions(s))]
    (statement,) = s3_statements
    assert statement["Effect"] == "Allow"
    # PutObject to store, GetObject so that its presigned GET URLs work; nothing else
    # (no List, no Delete, no ACLs, no wildcards).
    assert set(_actions(statement)) == {"s3:PutObject", "s3:GetObject"}
    assert statement["Resource"] == {"Fn::Sub": f"${{SnapshotBucket.Arn}}/{PREFIX}/*"}
    # Neither function touches the bucket.
    for role in ("SkillRole", "NotifierRole"):
        actions = {a for s in _statements(template["Resources"][role]) for a in _actions(s)}
        assert not any(a.startswith("s3:") for a in actions), role


def test_outputs_the_user_needs(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    for name in (
        "SkillFunctionArn",
        "NotifierFunctionArn",
        "StoreTableName",
        "SnapshotBucketName",
        "Camera1ChannelArn",
    ):
        assert name in outputs


def test_skill_manifest() -> None:
    manifest = json.loads((DEPLOY / "skill-package" / "skill.json").read_text())["manifest"]
    smart_home = manifest["apis"]["smartHome"]
    assert smart_home["protocolVersion"] == "3"
    assert smart_home["endpoint"]["uri"] == "SKILL_FUNCTION_ARN"
    assert sorted(smart_home["regions"]) == ["EU", "FE", "NA"]
    assert all(r["endpoint"]["uri"] == "SKILL_FUNCTION_ARN" for r in smart_home["regions"].values())
    assert {"name": "alexa::async_event:write"} in manifest["permissions"]
    assert manifest["publishingInformation"]["category"] == "SMART_HOME"
    for locale in manifest["publishingInformation"]["locales"].values():
        assert locale["name"] and locale["summary"] and locale["description"]


# The countries of the region table in docs/deploy-aws.md, and the languages Amazon offers
# smart home skills in there ("Develop Smart Home Skills for Multiple Languages"; the
# RTCSessionController page lists utterances for each). A skill in development shows only
# on devices whose language is one of its locales.
COUNTRY_LOCALES = {
    "US": ("en-US", "es-US"),
    "Canada": ("en-CA", "fr-CA"),
    "Mexico": ("es-MX",),
    "Brazil": ("pt-BR",),
    "UK": ("en-GB",),
    "Germany": ("de-DE",),
    "France": ("fr-FR",),
    "Italy": ("it-IT",),
    "Spain": ("es-ES",),
    "India": ("en-IN", "hi-IN"),
    "Japan": ("ja-JP",),
    "Australia": ("en-AU",),
}


def test_skill_manifest_has_a_locale_for_every_country_the_guide_promises() -> None:
    guide = (ROOT / "docs" / "deploy-aws.md").read_text("utf-8")
    table = guide.split("| your Amazon account |", 1)[1].split("\n\n", 1)[0]
    countries = {
        name.strip()
        for row in table.splitlines()[2:]
        for name in row.strip("|").split("|")[0].split(",")
    }
    assert countries == set(COUNTRY_LOCALES)
    manifest = json.loads((DEPLOY / "skill-package" / "skill.json").read_text())["manifest"]
    info = manifest["publishingInformation"]
    wanted = {locale for locales in COUNTRY_LOCALES.values() for locale in locales}
    assert set(info["locales"]) == wanted
    codes = {"US", "CA", "MX", "BR", "GB", "DE", "FR", "IT", "ES", "IN", "JP", "AU"}
    assert info["isAvailableWorldwide"] is False and set(info["distributionCountries"]) == codes
    for locale, text in info["locales"].items():
        assert text["name"] and text["summary"] and text["description"], locale
        assert text["examplePhrases"] and len(text["name"]) <= 50, locale


def test_account_linking_uses_login_with_amazon() -> None:
    request = json.loads((DEPLOY / "skill-package" / "accountLinking.json").read_text())[
        "accountLinkingRequest"
    ]
    assert request["type"] == "AUTH_CODE"  # required for smart-home skills
    assert request["authorizationUrl"] == "https://www.amazon.com/ap/oa"
    assert request["accessTokenUrl"] == "https://api.amazon.com/auth/o2/token"
    assert request["scopes"]
    # Placeholders only: the real client secret is filled in at deploy time.
    assert request["clientSecret"] == "LINKING_CLIENT_SECRET"


def test_lambda_environment_is_what_the_skill_reads(template: dict[str, Any]) -> None:
    config = ROOT / "src" / "alexa_doorbell" / "lambda_config" / "__init__.py"
    read = set(re.findall(r'get\("([A-Z_]+)"', config.read_text()))
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    unknown = {k for k in env if k.removeprefix("ALEXA_DOORBELL_") not in read}
    assert not unknown, f"the skill never reads {sorted(unknown)}"


def test_default_camera_catalog_parses(template: dict[str, Any]) -> None:
    from alexa_doorbell.lambda_config import parse_cameras

    cameras = template["Globals"]["Function"]["Environment"]["Variables"]["ALEXA_DOORBELL_CAMERAS"]
    condition, given, default = cameras["Fn::If"]
    assert condition == "HasCamerasJson" and given == {"Ref": "CamerasJson"}
    text = default["Fn::Sub"].replace("${Camera1ChannelName}", "front-door")
    (device,) = parse_cameras(text)
    assert (device.endpoint_id, device.channel_name, device.doorbell) == (
        "front-door",
        "front-door",
        True,
    )
