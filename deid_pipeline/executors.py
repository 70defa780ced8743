"""Which executor runs a job's steps: chosen by the deployment, so that local runs and
production run the same code.

- `multiprocess` (default, `dagster dev`, `make demo`): every step a subprocess on this machine.
- `in_process`: every step in the run's own process, one after another: one Python start per
  run instead of one per step, for small machines and short end-to-end checks.
- `k8s`: every step its own pod (needs `dagster-k8s`, installed in the production images), so
  a GPU step's `dagster-k8s/config` tags put it on the GPU node pool and CPU steps stay on CPU
  nodes.
- `ecs`: every step its own ECS task, placed by the `ecs/*` tags of `policies.GPU_TAGS`.
"""

import os

from dagster import ExecutorDefinition, in_process_executor

EXECUTOR_ENV = "DEID_EXECUTOR"
EXECUTORS = ("multiprocess", "in_process", "k8s", "ecs")


def executor_from_environment() -> ExecutorDefinition | None:
    """The executor `$DEID_EXECUTOR` names; None leaves Dagster's default (multiprocess, or in
    process when run config asks for it)."""
    name = os.environ.get(EXECUTOR_ENV) or "multiprocess"
    if name == "multiprocess":
        return None
    if name == "in_process":
        return in_process_executor
    if name == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    if name == "ecs":
        from dagster_aws.ecs import ecs_executor

        return ecs_executor
    raise ValueError(f"{EXECUTOR_ENV} must be one of {', '.join(EXECUTORS)}, not {name!r}")
