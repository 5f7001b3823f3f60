"""The policy model, its parsers, the environment reader and the store."""

from ._checks import ExtAuthzHttpPolicy, ExtensionProvider
from ._duration import format_duration, parse_duration
from ._env import (
    VARIABLES,
    AccessLogSettings,
    EnvSettings,
    access_log_from_env,
    policy_from_env,
    settings_from_env,
)
from ._limitkey import LimitKey, parse_limit_key
from ._model import (
    BackoffPolicy,
    BalancerPolicy,
    BreakerPolicy,
    BudgetPolicy,
    Defaults,
    EndpointSpec,
    HedgePolicy,
    OutlierPolicy,
    Policy,
    RetryPolicy,
    Service,
    ServicePolicy,
    TimeoutPolicy,
)
from ._parse import load_policy_file, policy_from_dict, policy_from_text, policy_to_dict
from ._store import PolicyStore, default_store, reset_default_store

__all__ = [
    "VARIABLES",
    "AccessLogSettings",
    "BackoffPolicy",
    "BalancerPolicy",
    "BreakerPolicy",
    "BudgetPolicy",
    "Defaults",
    "EndpointSpec",
    "EnvSettings",
    "ExtAuthzHttpPolicy",
    "ExtensionProvider",
    "HedgePolicy",
    "LimitKey",
    "OutlierPolicy",
    "Policy",
    "PolicyStore",
    "RetryPolicy",
    "Service",
    "ServicePolicy",
    "TimeoutPolicy",
    "access_log_from_env",
    "default_store",
    "format_duration",
    "load_policy_file",
    "parse_duration",
    "parse_limit_key",
    "policy_from_dict",
    "policy_from_env",
    "policy_from_text",
    "policy_to_dict",
    "reset_default_store",
    "settings_from_env",
]
