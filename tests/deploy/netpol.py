"""A small NetworkPolicy evaluator: is a TCP/UDP flow from one pod to another allowed?

Implements the semantics of networking.k8s.io/v1 that the overlays use: policies are
additive allow-lists per direction; a pod selected by no policy of a direction is open in
that direction; a flow needs both the client's egress and the server's ingress.
Peers: podSelector, namespaceSelector, both, and ipBlock (which matches only addresses
outside the cluster here, as it does for pod traffic with most CNI plugins).
Ports: number, endPort, protocol (named ports are not modelled).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Selector = Mapping[str, Any]


@dataclass(frozen=True)
class Endpoint:
    """A pod, or an address outside the cluster (namespace None, ip set)."""

    name: str
    namespace: str | None
    labels: Mapping[str, str] = field(default_factory=dict)
    ip: str | None = None

    @property
    def namespace_labels(self) -> Mapping[str, str]:
        if self.namespace is None:
            return {}
        return {"kubernetes.io/metadata.name": self.namespace}


def selector_matches(selector: Selector, labels: Mapping[str, str]) -> bool:
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values", [])
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def _ip_block_matches(block: Selector, ip: str | None) -> bool:
    if ip is None:
        return False
    address = ipaddress.ip_address(ip)
    if address not in ipaddress.ip_network(block["cidr"]):
        return False
    return not any(address in ipaddress.ip_network(cidr) for cidr in block.get("except", []))


def _peer_matches(peer: Selector, policy_namespace: str, other: Endpoint) -> bool:
    if "ipBlock" in peer:
        return _ip_block_matches(peer["ipBlock"], other.ip)
    if other.namespace is None:
        return False  # podSelector/namespaceSelector peers only ever match pods
    if "namespaceSelector" in peer:
        if not selector_matches(peer["namespaceSelector"], other.namespace_labels):
            return False
    elif other.namespace != policy_namespace:
        return False
    return selector_matches(peer.get("podSelector", {}), other.labels)


def _port_matches(rule_ports: list[Selector] | None, port: int, protocol: str) -> bool:
    if not rule_ports:
        return True
    for entry in rule_ports:
        if entry.get("protocol", "TCP") != protocol:
            continue
        if "port" not in entry:
            return True
        start = entry["port"]
        if not isinstance(start, int):
            raise NotImplementedError(f"named port {start!r} is not modelled")
        if start <= port <= entry.get("endPort", start):
            return True
    return False


def _direction_allows(
    policies: list[Selector],
    subject: Endpoint,
    other: Endpoint,
    port: int,
    protocol: str,
    direction: str,
) -> bool:
    """Does `subject`'s side of the flow let it through in `direction` (Ingress/Egress)?"""
    rules_key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    selecting = [
        p
        for p in policies
        if p["metadata"].get("namespace") == subject.namespace
        and direction in p["spec"].get("policyTypes", ["Ingress"])
        and selector_matches(p["spec"]["podSelector"], subject.labels)
    ]
    if not selecting:
        return True
    for policy in selecting:
        namespace = policy["metadata"]["namespace"]
        for rule in policy["spec"].get(rules_key, []):
            peers = rule.get(peers_key)
            peer_ok = not peers or any(_peer_matches(p, namespace, other) for p in peers)
            if peer_ok and _port_matches(rule.get("ports"), port, protocol):
                return True
    return False


def flow_allowed(
    policies: list[Selector], src: Endpoint, dst: Endpoint, port: int, protocol: str = "TCP"
) -> bool:
    egress = src.namespace is None or _direction_allows(
        policies, src, dst, port, protocol, "Egress"
    )
    ingress = dst.namespace is None or _direction_allows(
        policies, dst, src, port, protocol, "Ingress"
    )
    return egress and ingress
