"""The policy the assets apply: the packaged default with the site's own policy files layered on
top when `DEID_POLICY` names them (paths joined by ":", each file over the ones before it), as
`deid-pipeline deid --policy` layers them. Read by each step, so that a changed file takes effect
at the next run without reloading the code location; a bad file fails the step with its line and
reason."""

from __future__ import annotations

import os
from pathlib import Path

from deid_pipeline.core.policy.rules import Policy, load_policy

POLICY_ENV = "DEID_POLICY"


def site_policy() -> Policy:
    names = os.environ.get(POLICY_ENV, "")
    return load_policy([Path(name) for name in names.split(os.pathsep) if name])
