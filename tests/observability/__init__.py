"""Checks of the dashboards, alerting rules and monitors (k8s/components/observability)."""
