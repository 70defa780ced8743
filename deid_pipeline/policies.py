"""How steps are retried and where they run: shared by the asset modules.

Two kinds of retry, each for its own failure: `TRANSIENT_RETRY` retries a step whose storage or
network hiccuped (S3 throttling, a slow NFS); the instance's run retries (`run_retries` in
dagster.yaml) re-launch a run whose worker died (pod evicted, node lost). A bad input is neither:
raise `Failure(..., allow_retries=False)` so it fails at once.
"""

import json
import os

from dagster import Backoff, Jitter, RetryPolicy

# 10 s, 20 s, 40 s (±jitter so that a backfill's steps do not retry in lockstep).
TRANSIENT_RETRY = RetryPolicy(max_retries=3, delay=10, backoff=Backoff.EXPONENTIAL,
                              jitter=Jitter.PLUS_MINUS)

# The concurrency pool of every step that needs a GPU; its limit (how many such steps run at once
# across the deployment) is set in the instance: `concurrency.pools` in dagster.yaml, or
# `dagster instance concurrency set gpu N`.
GPU_POOL = "gpu"

# Node label and taint of the GPU node pool (infra/helm/values.yaml): GPU steps select it, the
# taint keeps every other pod off it.
NODE_POOL_LABEL = "deid-pipeline/node-pool"
GPU_NODE_POOL = "gpu"
GPU_TAINT_KEY = "nvidia.com/gpu"
# The EC2 capacity provider of GPU instances in the ECS cluster (ECS places GPU tasks only on EC2).
ECS_GPU_CAPACITY_PROVIDER = "deid-gpu"
# The image GPU steps run in on Kubernetes (infra/docker/Dockerfile.gpu), set on the code
# location; unset, they run in the run's own image.
GPU_IMAGE_ENV = "DEID_GPU_IMAGE"

# Op tags of a GPU step. `dagster-k8s/config` is read by the k8s_job_executor (a pod per step),
# the `ecs/*` tags by the ecs_executor (a task per step); the local multiprocess executor ignores
# both. CPU steps carry none of them and so run on the run launcher's CPU pods or tasks.
GPU_TAGS = {
    "dagster-k8s/config": {
        "container_config": {
            "resources": {"limits": {"nvidia.com/gpu": "1"}},
            **({"image": os.environ[GPU_IMAGE_ENV]} if os.environ.get(GPU_IMAGE_ENV) else {}),
        },
        "pod_spec_config": {
            "node_selector": {NODE_POOL_LABEL: GPU_NODE_POOL},
            "tolerations": [{"key": GPU_TAINT_KEY, "operator": "Exists",
                             "effect": "NoSchedule"}],
        },
    },
    "ecs/container_overrides": json.dumps(
        {"resourceRequirements": [{"type": "GPU", "value": "1"}]}),
    "ecs/run_task_kwargs": json.dumps(
        {"capacityProviderStrategy": [{"capacityProvider": ECS_GPU_CAPACITY_PROVIDER,
                                       "weight": 1}]}),
}
