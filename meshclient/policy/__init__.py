"""The policy model, its parsers, the environment reader and the store.

Other meshclient packages import the policy types from here (the package's public face),
never from its `_` modules."""

from ._discovery import DiscoveryPolicy, HealthPolicy
from ._document import MAX_DOCUMENT_BYTES
from ._duration import format_duration, parse_duration
from ._env import (
    VARIABLES,
    EnvSettings,
    TrustSettings,
    env_value,
    policy_from_env,
    settings_from_env,
    trust_from_env,
)
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
from ._routing import AbortFault, FaultPolicy, RouteMatch, RouteRule
from ._security import (
    AuthorizationPolicy,
    AuthPolicy,
    AuthzRule,
    BearerPolicy,
    LimitsPolicy,
    OAuth2Policy,
    TlsPolicy,
)
from ._store import PolicyStore, default_store

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "VARIABLES",
    "AbortFault",
    "AuthPolicy",
    "AuthorizationPolicy",
    "AuthzRule",
    "BackoffPolicy",
    "BalancerPolicy",
    "BearerPolicy",
    "BreakerPolicy",
    "BudgetPolicy",
    "Defaults",
    "DiscoveryPolicy",
    "EndpointSpec",
    "EnvSettings",
    "FaultPolicy",
    "HealthPolicy",
    "HedgePolicy",
    "LimitsPolicy",
    "OAuth2Policy",
    "OutlierPolicy",
    "Policy",
    "PolicyStore",
    "RetryPolicy",
    "RouteMatch",
    "RouteRule",
    "Service",
    "ServicePolicy",
    "TimeoutPolicy",
    "TlsPolicy",
    "TrustSettings",
    "default_store",
    "env_value",
    "format_duration",
    "load_policy_file",
    "parse_duration",
    "policy_from_dict",
    "policy_from_env",
    "policy_from_text",
    "policy_to_dict",
    "settings_from_env",
    "trust_from_env",
]
