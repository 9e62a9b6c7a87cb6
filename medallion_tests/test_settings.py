"""Configuration: every MEDALLION_* variable through one typed reader, errors that name the variable."""

import pytest

from medallion_platform.settings import ConfigError, MedallionEnvironment, Settings


def test_variables_come_from_the_process_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MEDALLION_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MEDALLION_BATCH_ROWS", "5000")
    monkeypatch.setenv("MEDALLION_DUCKDB_MEMORY_LIMIT", "1GB")
    monkeypatch.setenv("MEDALLION_STACK", "dev")
    monkeypatch.setenv("MEDALLION_CATALOG_KIND", "")  # empty means unset
    settings = Settings.from_env()
    assert (settings.data_dir, settings.batch_rows, settings.duckdb_memory_limit) == (tmp_path, 5000, "1GB")
    assert settings.stack == "dev" and settings.catalog_kind == "embedded"
    assert MedallionEnvironment.read().duckdb_memory_limit == "1GB"


def test_an_explicit_mapping_ignores_the_process_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MEDALLION_BATCH_ROWS", "5000")
    settings = Settings.from_env({"MEDALLION_ENV": "databricks"}, data_dir=tmp_path)
    assert settings.batch_rows == 250_000
    assert settings.catalog_kind == "unity"  # the databricks default
    assert settings.zone_roots == {zone: str(tmp_path / zone) for zone in ("raw", "trusted", "refined")}


def test_aws_variables_become_one_access_for_every_client(tmp_path):
    environ = {
        "MEDALLION_ENV": "local-aws",
        "MEDALLION_RAW_BUCKET": "r",
        "MEDALLION_TRUSTED_BUCKET": "t",
        "MEDALLION_REFINED_BUCKET": "f",
        "MEDALLION_AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "key",
        "AWS_SECRET_ACCESS_KEY": "secret",
    }
    settings = Settings.from_env(environ, data_dir=tmp_path)
    assert settings.zone_roots["trusted"] == "s3://t"
    assert settings.storage_options["AWS_ALLOW_HTTP"] == "true"
    aws = settings.aws
    assert (aws.region, aws.endpoint_url, aws.access_key_id) == ("eu-west-1", "http://127.0.0.1:9", "key")
    assert aws.arrow_s3()["endpoint_override"] == "127.0.0.1:9" and aws.arrow_s3()["scheme"] == "http"
    credentials = aws.session().get_credentials()
    assert (credentials.access_key, credentials.secret_key) == ("key", "secret")


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"MEDALLION_ENV": "prod"}, "MEDALLION_ENV='prod' is not an environment"),
        ({"MEDALLION_BATCH_ROWS": "many"}, "MEDALLION_BATCH_ROWS: Input should be a valid integer"),
        ({"MEDALLION_GRANTS": "{not json"}, "MEDALLION_GRANTS: Value error, not JSON"),
        ({"MEDALLION_ENV": "aws"}, "MEDALLION_ENV=aws needs MEDALLION_RAW_BUCKET"),
    ],
)
def test_a_bad_variable_is_named_in_one_error(environ, message, tmp_path):
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(environ, data_dir=tmp_path)
    assert message in str(caught.value)
