"""Storage policy: keys, public access, ACLs, TLS-only and endpoint-only policies, versioning, lifecycle, logs."""

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
    expected_key = {
        "raw": _key_arn(recording, "raw"),
        "staging": _key_arn(recording, "raw"),
        "trusted": _key_arn(recording, "curated"),
        "refined": _key_arn(recording, "curated"),
    }
    assert expected_key["raw"] != expected_key["trusted"], "raw must not share a key with trusted/refined"
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
    assert len(keys) == 5
    assert all(k.inputs["enableKeyRotation"] is True for k in keys)


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


def test_bucket_policies_deny_outside_project_endpoints_with_named_carve_outs(recording: Recording, config) -> None:
    names, out = _names(recording), recording.outputs
    admins = {config.break_glass_role_arn, config.deploy_role_arn}
    expected = {
        "raw": admins | {out["firehose_role_arn"], out["batch_operations_role_arn"], out["unity_catalog_role_arn"]},
        "trusted": admins | {out["unity_catalog_role_arn"]},
        "refined": admins | {out["unity_catalog_role_arn"]},
        "staging": admins | {out["batch_operations_role_arn"]},
        "access_logs": admins,
    }
    endpoints = set(out["s3_endpoint_ids"])
    assert len(endpoints) == 3  # S3 interface (VPC 1) and the gateway endpoints of both VPCs
    policies = by_bucket(recording, f"{S3}bucketPolicy:BucketPolicy")
    for role, carve_outs in expected.items():
        (stmt,) = [s for s in statements(policies[names[role]]) if s["Sid"] == "DenyOutsideProjectVpcEndpoints"]
        assert stmt["Effect"] == "Deny" and stmt["Action"] == "s3:*" and stmt["Principal"] == "*"
        assert set(stmt["Condition"]["StringNotEquals"]["aws:SourceVpce"]) == endpoints, role
        assert set(stmt["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]) == carve_outs, role


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
