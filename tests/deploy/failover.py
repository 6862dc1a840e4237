"""The disaster-recovery failover exactly as the runbook edits overlays/prod-dr, on a copy.

docs/operations.md#dr-failover promotes the DR region in two commits to
k8s/overlays/prod-dr/kustomization.yaml: uncomment the promotion patch, then delete the
dr-standby component. The tests apply the same two edits to a copy of k8s/ and render
it, so the state after failover is validated like any overlay; if the kustomization no
longer contains the text the runbook tells operators to edit, this fails loudly.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.deploy.manifests import K8S_DIR

PROD_DR = Path("overlays") / "prod-dr"

# Step 1: the commented-out promotion patch, as it stands in the kustomization.
PROMOTION_COMMENTED = """\
# patches:
#   - target:
#       kind: Cluster
#       name: shop-db
#     patch: |-
#       - op: replace
#         path: /spec/replica/enabled
#         value: false
"""
# Step 2: the standby component's line.
STANDBY_LINE = "  - ../../components/dr-standby\n"


def uncomment(block: str) -> str:
    return "".join(line[2:] if line.startswith("# ") else line for line in block.splitlines(True))


def promote(kustomization: str) -> str:
    """The kustomization after both failover steps (ValueError if the runbook's text is gone)."""
    for text in (PROMOTION_COMMENTED, STANDBY_LINE):
        if kustomization.count(text) != 1:
            raise ValueError(f"overlays/prod-dr no longer contains, once:\n{text}")
    return kustomization.replace(PROMOTION_COMMENTED, uncomment(PROMOTION_COMMENTED)).replace(
        STANDBY_LINE, ""
    )


def promoted_overlay(workdir: Path) -> Path:
    """A copy of k8s/ with overlays/prod-dr promoted; returns the promoted overlay's path."""
    root = workdir / "k8s"
    shutil.copytree(K8S_DIR, root)
    kustomization = root / PROD_DR / "kustomization.yaml"
    kustomization.write_text(promote(kustomization.read_text()))
    return root / PROD_DR
