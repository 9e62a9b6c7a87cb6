"""Storage policy: keys, public access, ACLs, TLS-only and endpoint-only policies, versioning, lifecycle, logs."""

import fnmatch

import pytest

from infra_pulumi.components.databricks import UNITY_CATALOG_ACTIONS, UNITY_CATALOG_READ_ACTIONS
from infra_pulumi.components.storage import BUCKET_CONFIG_ACTIONS
from infra_pulumi.config import MAX_NONCURRENT_DAYS
from infra_pulumi.mocks import Recording
from medallion_tests.infra.helpers import as_list, by_bucket, statements

S3 = "aws:s3/"


def _names(recording: Recording) -> dict[str, str]:
    """Bucket name by role, from the stack outputs."""
    roles = ("raw", "trusted", "refined", "staging", "access_logs")
    return {role: recording.outputs[f"{role}_bucket"] for role in roles}


def _key_arn(recording: Recording, purpose: str) -> str:
    return recording.outputs[f"{purpose}_key_arn"]


def test_every_role_has_a_bucket_named_by_the_platform(recording: Recording, config) -> None:
    from medallion_platform.naming import resource_names

    expected = resource_names(config.stack, bucket_suffix=config.account_id).buckets
    assert sorted(r.inputs["bucket"] for r in recording.of_type(f"{S3}bucket:Bucket")) == sorted(expected.values())


def test_data_buckets_use_their_zone_cmk_with_bucket_key_and_block_sse_c(recording: Recording) -> None:
    names = _names(recording)
    expected_key = {role: _key_arn(recording, role) for role in ("raw", "trusted", "refined", "staging")}
    assert len(set(expected_key.values())) == 4, "one key per data zone, and one for staging"
    enc = by_bucket(recording, f"{S3}bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    for role, key in expected_key.items():
        (rule,) = enc[names[role]].inputs["rules"]
        assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": key}, role
        assert rule["bucketKeyEnabled"] is True, role
    for name, resource in enc.items():
        assert resource.inputs["rules"][0]["blockedEncryptionTypes"] == ["SSE-C"], name


def test_access_log_bucket_uses_sse_s3_because_log_delivery_requires_it(recording: Recording) -> None:
    enc = by_bucket(recording, f"{S3}bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    rule = enc[_names(recording)["access_logs"]].inputs["rules"][0]
    assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "AES256"}


def test_kms_keys_rotate(recording: Recording) -> None:
    keys = recording.of_type("aws:kms/key:Key")
    assert len(keys) == 7
    assert all(k.inputs["enableKeyRotation"] is True for k in keys)


def test_key_administrators_cannot_use_the_keys(recording: Recording, config) -> None:
    for key in recording.of_type("aws:kms/key:Key"):
        (admin,) = [s for s in statements(key) if s["Sid"] == "AdministratorsManageButDoNotUse"]
        assert admin["Principal"] == {"AWS": [config.deploy_role_arn, config.break_glass_role_arn]}, key.name
        assert not any(
            a.startswith(("kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:ReEncrypt")) or a == "kms:*"
            for a in admin["Action"]
        )


def test_no_key_policy_lets_the_whole_account_use_a_key_unconditionally(recording: Recording, config) -> None:
    root = {"AWS": f"arn:aws:iam::{config.account_id}:root"}
    for key in recording.of_type("aws:kms/key:Key"):
        for stmt in statements(key):
            if stmt["Principal"] == root:
                assert "kms:ViaService" in stmt["Condition"]["StringEquals"], (key.name, stmt["Sid"])


def test_zone_keys_are_used_only_by_the_roles_of_their_zone(recording: Recording) -> None:
    out = recording.outputs
    roles = {
        "raw": {
            out["firehose_role_arn"],
            out["batch_operations_role_arn"],
            out["dagster_worker_role_arn"],
            out["unity_catalog_role_arn"],
        },
        "trusted": {out["dagster_worker_role_arn"], out["unity_catalog_role_arn"]},
        "refined": {out["dagster_worker_role_arn"], out["unity_catalog_role_arn"]},
    }
    for zone, expected in roles.items():
        (users,) = [s for s in statements(recording.named(f"{zone}-key")) if s["Sid"] == "NamedRolesUseThroughS3"]
        assert set(users["Condition"]["ArnEquals"]["aws:PrincipalArn"]) == expected, zone


def test_public_access_blocked_on_every_bucket(recording: Recording) -> None:
    blocks = by_bucket(recording, f"{S3}bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert set(blocks) == set(_names(recording).values())
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    for name, block in blocks.items():
        assert all(block.inputs[f] is True for f in flags), name


def test_acls_disabled_on_every_bucket(recording: Recording) -> None:
    owners = by_bucket(recording, f"{S3}bucketOwnershipControls:BucketOwnershipControls")
    assert set(owners) == set(_names(recording).values())
    assert all(o.inputs["rule"]["objectOwnership"] == "BucketOwnerEnforced" for o in owners.values())


def test_every_bucket_policy_denies_non_tls(recording: Recording) -> None:
    policies = by_bucket(recording, f"{S3}bucketPolicy:BucketPolicy")
    assert set(policies) == set(_names(recording).values())
    for name, policy in policies.items():
        deny = [s for s in statements(policy) if s["Sid"] == "DenyInsecureTransport"]
        assert len(deny) == 1, name
        (stmt,) = deny
        assert stmt["Effect"] == "Deny" and stmt["Principal"] == "*" and stmt["Action"] == "s3:*"
        assert stmt["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert set(stmt["Resource"]) == {f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"}


def _deny(recording: Recording, role: str, sid: str) -> dict:
    policy = by_bucket(recording, f"{S3}bucketPolicy:BucketPolicy")[_names(recording)[role]]
    (stmt,) = [s for s in statements(policy) if s["Sid"] == sid]
    return stmt


@pytest.mark.parametrize(
    ("role", "endpoints"),
    [
        ("raw", {"s3-raw-interface", "compute-s3-gateway"}),
        ("trusted", {"s3-trusted-interface", "compute-s3-gateway"}),
        ("refined", {"s3-refined-interface", "compute-s3-gateway"}),
        ("staging", {"s3-raw-interface"}),
    ],
)
def test_bucket_policy_accepts_only_its_zone_endpoint_and_the_compute_path(
    recording: Recording, role: str, endpoints: set[str]
) -> None:
    stmt = _deny(recording, role, "DenyOutsideProjectVpcEndpoints")
    assert stmt["Effect"] == "Deny" and stmt["Action"] == "s3:*" and stmt["Principal"] == "*"
    assert set(stmt["Condition"]["StringNotEquals"]["aws:SourceVpce"]) == {recording.named(e).id for e in endpoints}


def test_access_log_bucket_denies_everyone_but_the_carve_outs(recording: Recording) -> None:
    stmt = _deny(recording, "access_logs", "DenyAllButNamedPrincipals")
    assert "StringNotEquals" not in stmt["Condition"], "no endpoint serves the access logs"


@pytest.mark.parametrize(
    ("role", "carve_outs"),
    [
        ("raw", {"break_glass", "deployer", "firehose", "batch_operations", "unity_catalog"}),
        ("trusted", {"break_glass", "deployer", "unity_catalog"}),
        ("refined", {"break_glass", "deployer", "unity_catalog"}),
        ("staging", {"break_glass", "deployer", "batch_operations"}),
        ("access_logs", {"break_glass", "deployer"}),
    ],
)
def test_bucket_policy_carve_outs_are_named(recording: Recording, config, role: str, carve_outs: set[str]) -> None:
    out = recording.outputs
    arns = {
        "break_glass": config.break_glass_role_arn,
        "deployer": config.deploy_role_arn,
        "firehose": out["firehose_role_arn"],
        "batch_operations": out["batch_operations_role_arn"],
        "unity_catalog": out["unity_catalog_role_arn"],
    }
    sid = "DenyAllButNamedPrincipals" if role == "access_logs" else "DenyOutsideProjectVpcEndpoints"
    stmt = _deny(recording, role, sid)
    assert set(stmt["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]) == {arns[c] for c in carve_outs}


@pytest.mark.parametrize("role", ["raw", "trusted", "refined", "staging", "access_logs"])
def test_deployer_is_exempt_only_for_bucket_configuration(recording: Recording, config, role: str) -> None:
    stmt = _deny(recording, role, "LimitDeployerOutsideEndpoints")
    assert stmt["Condition"]["ArnEquals"] == {"aws:PrincipalArn": config.deploy_role_arn}
    assert stmt["NotAction"] == list(BUCKET_CONFIG_ACTIONS)
    for data in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:GetObjectVersion"):
        assert not any(fnmatch.fnmatchcase(data, allowed) for allowed in stmt["NotAction"]), data


@pytest.mark.parametrize(
    ("role", "actions"),
    [("raw", UNITY_CATALOG_READ_ACTIONS), ("trusted", UNITY_CATALOG_ACTIONS), ("refined", UNITY_CATALOG_ACTIONS)],
)
def test_unity_catalog_is_exempt_only_for_its_data_actions(recording: Recording, role: str, actions: tuple) -> None:
    stmt = _deny(recording, role, "LimitUnityCatalogOutsideEndpoints")
    assert stmt["Condition"]["ArnEquals"] == {"aws:PrincipalArn": recording.outputs["unity_catalog_role_arn"]}
    assert stmt["NotAction"] == list(actions)


def test_unity_catalog_reads_raw_only(recording: Recording) -> None:
    stmt = _deny(recording, "raw", "LimitUnityCatalogOutsideEndpoints")
    assert not {"s3:PutObject", "s3:DeleteObject"} & set(stmt["NotAction"])


def test_no_bucket_policy_allows_anyone_but_the_log_delivery_service(recording: Recording) -> None:
    for policy in recording.of_type(f"{S3}bucketPolicy:BucketPolicy"):
        for stmt in statements(policy):
            if stmt["Effect"] == "Allow":
                assert stmt["Principal"] == {"Service": "logging.s3.amazonaws.com"}
                assert "aws:SourceAccount" in stmt["Condition"]["StringEquals"]


def test_versioning_on_and_noncurrent_versions_expire_within_seven_days(recording: Recording, config) -> None:
    versioning = by_bucket(recording, f"{S3}bucketVersioning:BucketVersioning")
    lifecycles = by_bucket(recording, f"{S3}bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    for name in _names(recording).values():
        assert versioning[name].inputs["versioningConfiguration"]["status"] == "Enabled", name
        days = [
            r["noncurrentVersionExpiration"]["noncurrentDays"]
            for r in lifecycles[name].inputs["rules"]
            if "noncurrentVersionExpiration" in r
        ]
        assert days == [config.noncurrent_version_days] and days[0] <= MAX_NONCURRENT_DAYS, name


def test_lifecycle_aborts_multipart_uploads_and_expires_landing(recording: Recording, config) -> None:
    lifecycles = by_bucket(recording, f"{S3}bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    for name, lifecycle in lifecycles.items():
        aborts = [r for r in lifecycle.inputs["rules"] if "abortIncompleteMultipartUpload" in r]
        assert aborts and aborts[0]["abortIncompleteMultipartUpload"]["daysAfterInitiation"] <= 7, name
        assert all(r["status"] == "Enabled" for r in lifecycle.inputs["rules"])
    raw_rules = lifecycles[_names(recording)["raw"]].inputs["rules"]
    landing = [r for r in raw_rules if r.get("filter", {}).get("prefix") == "landing/"]
    assert landing and landing[0]["expiration"]["days"] == config.landing_retention_days


def test_every_bucket_but_the_log_bucket_logs_to_the_log_bucket(recording: Recording) -> None:
    names = _names(recording)
    logging = by_bucket(recording, f"{S3}bucketLogging:BucketLogging")
    assert set(logging) == set(names.values()) - {names["access_logs"]}
    assert {r.inputs["targetBucket"] for r in logging.values()} == {names["access_logs"]}


def test_eventbridge_notifications_on_raw_and_staging(recording: Recording) -> None:
    names = _names(recording)
    notes = by_bucket(recording, f"{S3}bucketNotification:BucketNotification")
    assert set(notes) == {names["raw"], names["staging"]}
    assert all(n.inputs["eventbridge"] is True for n in notes.values())


def test_log_bucket_grants_only_s3_log_delivery_from_project_buckets(recording: Recording) -> None:
    names = _names(recording)
    policy = by_bucket(recording, f"{S3}bucketPolicy:BucketPolicy")[names["access_logs"]]
    (allow,) = [s for s in statements(policy) if s["Effect"] == "Allow"]
    sources = set(as_list(allow["Condition"]["ArnLike"]["aws:SourceArn"]))
    assert sources == {f"arn:aws:s3:::{n}" for r, n in names.items() if r != "access_logs"}
