"""Collectors: one module per source, registered here by name.

`poise sync` runs the sources in this order; a new collector adds one line.
"""

from __future__ import annotations

from collectors.base import Source
from collectors.git import GitSource
from collectors.github import GitHubSource
from collectors.gitlab import GitLabSource
from collectors.jenkins import JenkinsSource
from collectors.opsgenie import OpsgenieSource
from collectors.pagerduty import PagerDutySource
from collectors.prometheus import PrometheusSource
from collectors.tls import TlsSource

SOURCES: dict[str, type[Source]] = {
    "git": GitSource,
    "github": GitHubSource,
    "gitlab": GitLabSource,
    "jenkins": JenkinsSource,
    "pagerduty": PagerDutySource,
    "opsgenie": OpsgenieSource,
    "prometheus": PrometheusSource,
    "tls": TlsSource,
}

__all__ = ["SOURCES", "Source"]
