"""The deployment files in infra/: the instance YAML through Dagster's own config validation, the
Helm values against what the code relies on, the Dockerfiles and Terraform by structure
(neither docker nor terraform runs here)."""

import re
import shutil
from pathlib import Path

import pytest
import yaml
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config, storage_config_schema
from dagster._serdes import class_from_code_pointer

from deid_pipeline.policies import GPU_IMAGE_ENV, GPU_NODE_POOL, NODE_POOL_LABEL

INFRA = Path(__file__).resolve().parents[1] / "infra"
INSTANCE_ENV = {"DAGSTER_PG_HOST": "db.internal", "DAGSTER_PG_PORT": "5432",
                "DAGSTER_PG_DB": "dagster", "DAGSTER_PG_USER": "dagster",
                "DAGSTER_PG_PASSWORD": "not-a-password", "DEID_WORK_BUCKET": "acme-deid-work"}


def load_instance_config(name: str, tmp_path: Path) -> dict:
    """`name` validated as Dagster validates $DAGSTER_HOME/dagster.yaml; then, as the instance
    does when it starts, the storage and the config of each configurable class whose package is
    installed resolved against their schemas, environment variables included."""
    shutil.copy(INFRA / name, tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))
    resolved = [(section, storage_config_schema().config_type, config[section])
                for section in ("storage",) if section in config]
    for section in ("run_coordinator", "compute_logs"):
        if section in config:
            klass = class_from_code_pointer(config[section]["module"], config[section]["class"])
            resolved.append((section, klass.config_type(), config[section].get("config", {})))
    for section, config_type, value in resolved:
        result = process_config(config_type, value)
        assert result.success, (section, [error.message for error in result.errors])
    return config


@pytest.fixture
def instance_env(monkeypatch):
    for name, value in INSTANCE_ENV.items():
        monkeypatch.setenv(name, value)


def test_production_instance_yaml_is_valid_dagster_config(tmp_path, instance_env):
    config = load_instance_config("dagster.yaml", tmp_path)

    assert set(config["storage"]) == {"postgres"}
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    runs = config["concurrency"]["runs"]
    limits = {limit["key"]: limit for limit in runs["tag_concurrency_limits"]}
    assert limits["dagster/partition"] == {"key": "dagster/partition", "limit": 1,
                                           "value": {"applyLimitPerUniqueValue": True}}
    assert config["concurrency"]["pools"]["default_limit"] >= 1
    assert config["run_monitoring"]["enabled"]
    assert config["run_monitoring"]["free_slots_after_run_end_seconds"] > 0
    assert config["run_retries"] == {"enabled": True, "max_retries": 2,
                                     "retry_on_asset_or_op_failure": False}


def test_production_instance_yaml_needs_its_secrets_from_the_environment(tmp_path, monkeypatch,
                                                                         instance_env):
    monkeypatch.delenv("DAGSTER_PG_PASSWORD")
    with pytest.raises(AssertionError, match="postgres_db:password"):
        load_instance_config("dagster.yaml", tmp_path)


def test_local_instance_yaml_is_valid_dagster_config(tmp_path):
    config = load_instance_config("dagster.local.yaml", tmp_path)
    assert "storage" not in config  # SQLite in DAGSTER_HOME, Dagster's default
    assert config["run_retries"]["enabled"]


def deployment_env(values: dict) -> dict[str, str]:
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    return {item["name"]: item["value"] for item in deployment["env"]}


def test_helm_values_match_the_code_and_the_instance_yaml(tmp_path, instance_env):
    values = yaml.safe_load((INFRA / "helm" / "values.yaml").read_text())
    instance = load_instance_config("dagster.yaml", tmp_path)

    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == ["--module-name", "deid_pipeline.definitions"]
    assert deployment["includeConfigInLaunchedRuns"]["enabled"]
    env = deployment_env(values)
    assert env["DEID_EXECUTOR"] == "k8s"
    assert GPU_IMAGE_ENV in env
    assert all(env[name].startswith("s3://")
               for name in ("DEID_INCOMING_ROOT", "DEID_DATA_ROOT", "DEID_PRIVATE_ROOT"))

    launcher = values["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    pod_spec = launcher["config"]["k8sRunLauncher"]["runK8sConfig"]["podSpecConfig"]
    # CPU pods select the CPU pool by the very label GPU steps override with the GPU pool.
    assert pod_spec["nodeSelector"] == {NODE_POOL_LABEL: "cpu"}
    assert GPU_NODE_POOL != "cpu"

    daemon = values["dagsterDaemon"]
    assert daemon["runCoordinator"]["type"] == "QueuedRunCoordinator"
    assert daemon["runMonitoring"]["freeSlotsAfterRunEndSeconds"] == (
        instance["run_monitoring"]["free_slots_after_run_end_seconds"])
    assert daemon["runRetries"] == {
        "enabled": True, "maxRetries": instance["run_retries"]["max_retries"],
        "retryOnAssetOrOpFailure": instance["run_retries"]["retry_on_asset_or_op_failure"]}
    concurrency = values["concurrency"]
    assert concurrency["enabled"]
    assert concurrency["pools"]["defaultLimit"] == instance["concurrency"]["pools"]["default_limit"]
    assert concurrency["runs"]["tagConcurrencyLimits"] == (
        instance["concurrency"]["runs"]["tag_concurrency_limits"])


def test_dockerfiles_install_the_pins_and_the_gpu_image_swaps_its_runtimes():
    cpu = (INFRA / "docker" / "Dockerfile.cpu").read_text()
    gpu = (INFRA / "docker" / "Dockerfile.gpu").read_text()
    for dockerfile in (cpu, gpu):
        assert "-c constraints.txt" in dockerfile or "constraints-gpu.txt" in dockerfile
        assert "dagster-postgres" in dockerfile and "dagster-k8s" in dockerfile
        assert re.search(r"^USER ", dockerfile, re.MULTILINE)
        # Package indexes are given at build time, never named here.
        assert not re.search(r"https?://", dockerfile)
    assert "onnxruntime-gpu" not in cpu
    assert "pip uninstall -y onnxruntime" in gpu and 'onnxruntime-gpu==${ONNXRUNTIME}' in gpu
    assert re.search(r"grep -v -E '\^\(torch\|onnxruntime\)==' constraints.txt", gpu)


def test_terraform_declares_private_encrypted_versioned_buckets_and_the_pipeline_role():
    main = (INFRA / "terraform" / "main.tf").read_text()
    variables = (INFRA / "terraform" / "variables.tf").read_text()
    outputs = (INFRA / "terraform" / "outputs.tf").read_text()
    for text in (main, variables, outputs):
        assert text.count("{") == text.count("}")
    for bucket in ("incoming", "outputs", "work"):
        assert re.search(rf'{bucket}\s*=\s*"\$\{{var.name_prefix\}}-{bucket}"', main), bucket
        assert f'aws_s3_bucket_lifecycle_configuration" "{bucket}"' in main
    for resource in ("aws_s3_bucket_public_access_block", "aws_s3_bucket_versioning",
                     "aws_s3_bucket_server_side_encryption_configuration",
                     "aws_s3_bucket_ownership_controls", "aws_iam_role", "aws_iam_policy",
                     "aws_kms_key"):
        assert f'resource "{resource}"' in main, resource
    assert '"aws:kms"' in main and "aws:SecureTransport" in main
    # The drops are only read: no write or delete on the incoming bucket.
    read_drops = re.search(r'sid\s*=\s*"ReadDrops".*?\}', main, re.DOTALL).group(0)
    assert '["s3:GetObject"]' in read_drops
    for name in ("incoming_root", "data_root", "private_root", "pipeline_role_arn"):
        assert f'output "{name}"' in outputs
    for name in re.findall(r"var\.(\w+)", main):
        assert f'variable "{name}"' in variables, name
